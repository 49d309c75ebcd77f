"""Where the toolkit's own conf/ lives: installed as package data, or beside a source checkout."""

from pathlib import Path


def conf_dir() -> Path:
    """The toolkit's conf/ directory (fbank.conf, mfcc.conf, <model>.yaml)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "fbank.conf").is_file():
            return candidate
    raise FileNotFoundError(f"speech-reps: no conf/ directory found beside {here}; reinstall the package")


def default_conf(name: str) -> Path:
    return conf_dir() / name


ARTIFACTS_ENV = "SPEECH_REPS_ARTIFACTS"


def artifacts_dir() -> Path:
    """Where published weights live: $SPEECH_REPS_ARTIFACTS, else artifacts/ beside the toolkit's
    conf/ (a source checkout's artifacts/), whatever the working directory."""
    import os

    env = os.environ.get(ARTIFACTS_ENV)
    return Path(env) if env else conf_dir().parent / "artifacts"
