"""Downloading the published weights into the artifacts location: resumable (HTTP Range),
checked, atomic.

What can be downloaded is read from the model declarations (``WeightFile``: file, URL, SHA-256).
A file is checked against its declared SHA-256 when one is published; Gluon's files end in the
first 8 hex digits of their SHA-1 (decoar-encoder-29b8e2ac.params), which is checked too.
Without a published SHA-256, the digest of the first good download is recorded beside the file
(<file>.sha256, trust on first use) and later copies are checked against it. A partial download
stays as <file>.part and the next run resumes it; the file appears under its name only when
complete. The artifacts location is $SPEECH_REPS_ARTIFACTS, else the toolkit's artifacts/.
"""

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from speech_reps.conf_dir import artifacts_dir as default_artifacts_dir
from speech_reps.errors import SpeechRepsError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def artifacts():
    """{download name: (model name, WeightFile)} of every declared model."""
    from speech_reps.models.registry import specs

    return {name: (spec.name, w) for spec in specs() for name, w in spec.downloads()}


class DownloadError(SpeechRepsError):
    pass


def fetch(url, dest, timeout=60):
    """Download ``url`` to ``dest``, resuming ``dest``.part; ``dest`` appears only when complete."""
    dest = Path(dest)
    part = Path(f"{dest}.part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            if have and status == 200:  # the server ignored Range: start over
                have = 0
            total = response.headers.get("Content-Length")
            with open(part, "ab" if have else "wb") as out:
                shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the part is complete
            pass
        else:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)} ({part} keeps what arrived; rerun to resume)") from None
    else:
        if total is not None and part.stat().st_size != have + int(total):
            raise DownloadError(f"{url}: connection ended early ({part} keeps what arrived; rerun to resume)")
    os.replace(part, dest)
    return dest


def sha(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path, sha256=None):
    """Check ``path`` against ``sha256`` (its published digest), the SHA-1 prefix in its name,
    or else the SHA-256 recorded at its first download (recorded now if there is none)."""
    path = Path(path)
    digest = sha(path, "sha256")
    if sha256 is not None and digest != sha256.lower():
        raise DownloadError(f"{path}: SHA-256 {digest}, expected the published {sha256.lower()}: corrupt or "
                            "wrong file")
    m = re.search(r"-([0-9a-f]{8})\.params$", path.name)
    if m:
        if not sha(path, "sha1").startswith(m.group(1)):
            raise DownloadError(f"{path}: SHA-1 does not start with {m.group(1)}: corrupt or wrong file")
    if sha256 is not None:
        return
    record = Path(f"{path}.sha256")
    if record.exists():
        recorded = record.read_text().split()[0]
        if recorded != digest:
            raise DownloadError(f"{path}: SHA-256 {digest}, expected {recorded} (recorded in {record} at its first "
                                "download): corrupt or wrong file")
    elif not m:
        record.write_text(f"{digest}  {path.name}\n")


def download(name, artifacts_dir=None, url=None):
    """The weights ``name`` (utils/download_models.sh's name) in ``artifacts_dir`` (default: the
    artifacts location), downloaded if missing, verified."""
    known = artifacts()
    if name not in known:
        raise DownloadError(f"no download known for '{name}' (known: {', '.join(sorted(known))})")
    art = known[name][1]
    artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir()
    created = not artifacts_dir.exists()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    dest = artifacts_dir / art.file
    fresh = not dest.exists()
    if fresh:
        source = url or art.url
        try:
            if art.zip_member:
                archive = fetch(source, artifacts_dir / (art.file + ".zip"))
                try:
                    with zipfile.ZipFile(archive) as z, open(f"{dest}.part", "wb") as out:
                        shutil.copyfileobj(z.open(art.zip_member), out, CHUNK)
                except (zipfile.BadZipFile, KeyError) as e:
                    raise DownloadError(f"{archive}: not a zip holding {art.zip_member}: {e}") from None
                os.replace(f"{dest}.part", dest)
                archive.unlink()
            else:
                fetch(source, dest)
        except DownloadError:
            if created:  # a failed download leaves no empty artifacts/ behind (a partial one stays)
                try:
                    artifacts_dir.rmdir()
                except OSError:
                    pass
            raise
    try:
        verify(dest, art.sha256)
    except DownloadError:
        if fresh:  # never leave a bad download where the models look for weights
            os.replace(dest, f"{dest}.corrupt")
        raise
    return dest
