"""One run at a time per output: an ``flock`` on ``<out-dir>/.<name>.lock``.

Two runs writing the same archive and journal at once would corrupt both; the second is refused
with a clear error instead. The lock is per output name, so featurize.sh's parallel jobs (one
``--name`` each) share a feature dir. The kernel drops the lock when the process ends, however it
ends, so a killed run never leaves a stale lock behind (the file itself stays, empty).
"""

import fcntl
import os
from pathlib import Path

from speech_reps.errors import ConfigError


class OutputLock:
    """Holds the lock until ``release`` or until it is garbage collected (its file is closed)."""

    def __init__(self, fd):
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __del__(self):
        self.release()


def lock_output_dir(out_dir, name):
    """Lock output ``name`` of ``out_dir``; a ConfigError when another run holds it."""
    path = Path(out_dir) / f".{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot write to {out_dir}: {path.name}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{out_dir}: another run is writing {name}.* into this directory (it holds "
                          f"{path}); wait for it to finish, or use another output dir") from None
    return OutputLock(fd)
