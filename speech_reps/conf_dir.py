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
