"""Downloading the published weights into artifacts/: resumable (HTTP Range), checked, atomic.

Gluon's files end in the first 8 hex digits of their SHA-1 (decoar-encoder-29b8e2ac.params):
that is checked. For the others the SHA-256 of the first good download is recorded beside the
file (<file>.sha256) and later copies are checked against it. A partial download stays as
<file>.part and the next run resumes it; the file appears under its name only when complete.
"""

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from speech_reps.errors import SpeechRepsError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    file: str
    url: str
    zip_member: str = None  # the URL is a zip holding this member


ARTIFACTS = {
    "decoar": Artifact("decoar-encoder-29b8e2ac.params",
                       "https://apache-mxnet.s3-us-west-2.amazonaws.com/gluon/models/decoar-encoder-29b8e2ac.zip",
                       zip_member="decoar-encoder-29b8e2ac.params"),
    "decoar-pt": Artifact("checkpoint_decoar.pt",
                          "https://github.com/awslabs/speech-representations/releases/download/decoar/checkpoint_decoar.pt"),
    "decoar2": Artifact("checkpoint_decoar2.pt",
                        "https://github.com/awslabs/speech-representations/releases/download/decoar2/checkpoint_decoar2.pt"),
    "bertphone": Artifact("bertphone_fisher_02-87159543.params",
                          "https://github.com/awslabs/speech-representations/releases/download/bertphone/bertphone_fisher_02-87159543.params"),
    "wav2vec": Artifact("wav2vec_large.pt", "https://dl.fbaipublicfiles.com/fairseq/wav2vec/wav2vec_large.pt"),
    "wav2vec2": Artifact("wav2vec_small.pt", "https://dl.fbaipublicfiles.com/fairseq/wav2vec/wav2vec_small.pt"),
    "hubert": Artifact("hubert_base_ls960.pt", "https://dl.fbaipublicfiles.com/hubert/hubert_base_ls960.pt"),
}


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


def verify(path):
    """Check ``path`` against the SHA-1 prefix in its name, or its recorded SHA-256."""
    path = Path(path)
    m = re.search(r"-([0-9a-f]{8})\.params$", path.name)
    if m:
        if not sha(path, "sha1").startswith(m.group(1)):
            raise DownloadError(f"{path}: SHA-1 does not start with {m.group(1)}: corrupt or wrong file")
        return
    record = Path(f"{path}.sha256")
    digest = sha(path, "sha256")
    if record.exists():
        if record.read_text().split()[0] != digest:
            raise DownloadError(f"{path}: SHA-256 differs from the one recorded in {record}")
    else:
        record.write_text(f"{digest}  {path.name}\n")


def download(name, artifacts_dir="artifacts", url=None):
    """The weights of model ``name`` in ``artifacts_dir`` (downloaded if missing), verified."""
    if name not in ARTIFACTS:
        raise DownloadError(f"no download known for '{name}' (known: {', '.join(sorted(ARTIFACTS))})")
    art = ARTIFACTS[name]
    artifacts_dir = Path(artifacts_dir)
    created = not artifacts_dir.exists()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    dest = artifacts_dir / art.file
    fresh = not dest.exists()
    if fresh:
        source = url or art.url
        try:
            if art.zip_member:
                archive = fetch(source, artifacts_dir / (art.file + ".zip"))
                with zipfile.ZipFile(archive) as z, open(f"{dest}.part", "wb") as out:
                    shutil.copyfileobj(z.open(art.zip_member), out, CHUNK)
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
        verify(dest)
    except DownloadError:
        if fresh:  # never leave a bad download where the models look for weights
            os.replace(dest, f"{dest}.corrupt")
        raise
    return dest
