"""Weights download against a local HTTP server on 127.0.0.1: resume, checksums, atomic landing."""

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from speech_reps.download import DownloadError, download, fetch, verify
from speech_reps.models.declaration import WeightFile

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves ``files`` with HTTP Range support; ``cut_next`` drops the next response half way."""

    def __init__(self):
        self.files, self.cut_next, self.ranges = {}, False, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if "Range" in self.headers:
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    server.ranges.append(start)
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.cut_next:
                    server.cut_next = False
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def test_interrupted_download_resumes_and_lands_atomically(tmp_path, server):
    server.files["/w.pt"] = PAYLOAD
    server.cut_next = True
    with pytest.raises(DownloadError, match="connection ended early .*rerun to resume"):
        fetch(f"{server.url}/w.pt", tmp_path / "w.pt")
    assert not (tmp_path / "w.pt").exists()
    half = (tmp_path / "w.pt.part").stat().st_size
    assert 0 < half < len(PAYLOAD)
    fetch(f"{server.url}/w.pt", tmp_path / "w.pt")
    assert server.ranges == [half]  # the second request asked only for the rest
    assert (tmp_path / "w.pt").read_bytes() == PAYLOAD and not (tmp_path / "w.pt.part").exists()


def test_sha256_is_recorded_then_checked(tmp_path, server):
    server.files["/wav2vec_large.pt"] = PAYLOAD
    path = download("wav2vec", tmp_path, url=f"{server.url}/wav2vec_large.pt")
    assert path == tmp_path / "wav2vec_large.pt"
    assert (tmp_path / "wav2vec_large.pt.sha256").read_text().split()[0] == hashlib.sha256(PAYLOAD).hexdigest()
    path.write_bytes(PAYLOAD[:-1] + b"x")
    digest, bad = hashlib.sha256(PAYLOAD).hexdigest(), hashlib.sha256(PAYLOAD[:-1] + b"x").hexdigest()
    with pytest.raises(DownloadError) as e:
        download("wav2vec", tmp_path)
    assert str(e.value) == (f"{path}: SHA-256 {bad}, expected {digest} (recorded in {path}.sha256 at its first "
                            "download): corrupt or wrong file")


def test_gluon_names_carry_their_sha1(tmp_path, server):
    good = tmp_path / f"model-{hashlib.sha1(PAYLOAD).hexdigest()[:8]}.params"
    good.write_bytes(PAYLOAD)
    verify(good)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("decoar-encoder-29b8e2ac.params", PAYLOAD)
    server.files["/decoar.zip"] = zipped.getvalue()
    with pytest.raises(DownloadError, match="SHA-1 does not start with 29b8e2ac"):
        download("decoar", tmp_path, url=f"{server.url}/decoar.zip")
    assert not (tmp_path / "decoar-encoder-29b8e2ac.params").exists()  # a bad download is moved aside
    assert (tmp_path / "decoar-encoder-29b8e2ac.params.corrupt").read_bytes() == PAYLOAD  # unzipped


def test_http_errors_and_unknown_models(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{server.url}/missing.pt", tmp_path / "m.pt")
    with pytest.raises(DownloadError, match="no download known for 'nope'"):
        download("nope", tmp_path)


def test_published_sha256_is_checked_and_a_mismatch_refused(tmp_path, server, monkeypatch):
    """A declared (published) digest: a download that differs is refused in one line naming the
    file, the expected and the actual digest, and moved aside; nothing is recorded."""
    import speech_reps.download as dl

    digest = hashlib.sha256(PAYLOAD).hexdigest()
    server.files["/good.pt"], server.files["/bad.pt"] = PAYLOAD, PAYLOAD[:-1] + b"x"
    declared = {"good": ("m", WeightFile("good.pt", f"{server.url}/good.pt", sha256=digest)),
                "bad": ("m", WeightFile("bad.pt", f"{server.url}/bad.pt", sha256=digest))}
    monkeypatch.setattr(dl, "artifacts", lambda: declared)
    assert download("good", tmp_path) == tmp_path / "good.pt"
    assert not (tmp_path / "good.pt.sha256").exists()  # the published digest is the record
    with pytest.raises(DownloadError) as e:
        download("bad", tmp_path)
    actual = hashlib.sha256(PAYLOAD[:-1] + b"x").hexdigest()
    assert str(e.value) == (f"{tmp_path}/bad.pt: SHA-256 {actual}, expected the published {digest}: corrupt "
                            "or wrong file")
    assert not (tmp_path / "bad.pt").exists() and (tmp_path / "bad.pt.corrupt").is_file()


def test_downloads_go_to_the_artifacts_location(tmp_path, server, monkeypatch):
    """Without --artifacts: $SPEECH_REPS_ARTIFACTS, whatever the working directory."""
    server.files["/wav2vec_large.pt"] = PAYLOAD
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path / "art"))
    monkeypatch.chdir(tmp_path)
    assert download("wav2vec", url=f"{server.url}/wav2vec_large.pt") == tmp_path / "art" / "wav2vec_large.pt"


def test_the_ge2e_wheel_file_is_pinned(tmp_path):
    from speech_reps.errors import ConfigError
    from speech_reps.models.formats.resemblyzer import installed_weights
    from speech_reps.models.registry import get_model_class

    pinned = get_model_class("ge2e").spec.weights[0].sha256
    path = installed_weights(pinned)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned
    with pytest.raises(ConfigError) as e:
        installed_weights("0" * 64)
    assert str(e.value).startswith(f"{path}: SHA-256 {pinned}, expected the published {'0' * 64} ")
    assert "\n" not in str(e.value)
