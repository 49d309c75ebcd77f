"""Kaldi option files: ``--name=value`` lines with ``#`` comments, read as data.

Kaldi's ParseOptions::ReadConfigFile semantics: text after ``#`` is dropped, blank lines are
skipped, every other line must start with ``--``; ``--flag`` alone means ``--flag=true``;
``_`` in a name is read as ``-``; a later line overrides an earlier one. Unlike Kaldi's
``parse_options.sh --config``, nothing here is ever run as shell code.
"""

from dataclasses import dataclass
from pathlib import Path

from speech_reps.errors import ConfigError

_TRUE = {"true", "t", "1"}
_FALSE = {"false", "f", "0"}


@dataclass(frozen=True)
class OptionLine:
    name: str
    value: str
    source: str  # "file:line" (or "command line"), for error messages


def parse_option_lines(lines, source):
    """Parse Kaldi option lines; return {name: OptionLine}, later lines overriding earlier."""
    options = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        if not line.startswith("--") or len(line) == 2:
            raise ConfigError(f"{where}: invalid option line '{raw.rstrip()}' (expected --name=value)")
        name, sep, value = line[2:].partition("=")
        name = name.strip().replace("_", "-")
        if " " in name or not name:
            raise ConfigError(f"{where}: invalid option line '{raw.rstrip()}' (expected --name=value)")
        options[name] = OptionLine(name, value.strip() if sep else "true", where)
    return options


def read_option_file(path):
    """Read a Kaldi option file (e.g. conf/fbank.conf) into {name: OptionLine}."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read option file: {e.strerror}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"{path}:1: the file starts with a UTF-8 byte order mark (BOM); remove it")
    lines = data.split(b"\n")
    for lineno, line in enumerate(lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}:{lineno}: not UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1})") from None
    return parse_option_lines(data.decode("utf-8").splitlines(), str(path))


def parse_bool(text):
    """Kaldi's reading of a boolean (true/t/1, false/f/0, any case); None if it is neither."""
    value = text.lower()
    return True if value in _TRUE else False if value in _FALSE else None


def to_bool(option: OptionLine) -> bool:
    value = parse_bool(option.value)
    if value is None:
        raise ConfigError(f"{option.source}: --{option.name}={option.value}: expected true or false")
    return value


def to_number(option: OptionLine, kind):
    try:
        return kind(option.value)
    except ValueError:
        raise ConfigError(
            f"{option.source}: --{option.name}={option.value}: expected {kind.__name__}"
        ) from None


def format_value(value) -> str:
    """A value as Kaldi writes it in an option file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)
