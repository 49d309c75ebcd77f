"""Reading Kaldi table files (``<key> <rest>`` lines) with the checks Kaldi's scripts make.

Kaldi requires every table sorted under ``LC_ALL=C`` (byte order) with unique keys; a problem is
reported as ``file:line: key: cause`` so the user can go straight to it. Tables are read as
UTF-8: a line that is not is a problem naming its line and byte, and a UTF-8 byte order mark
(which some editors write, and Kaldi would read as part of the first key) is named as such.
"""

from dataclasses import dataclass
from pathlib import Path

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Row:
    key: str
    fields: list  # the whitespace-split fields after the key
    rest: str  # everything after the key, as written (wav.scp commands keep their spacing)
    where: str  # "path:line"


def table_file_problem(path):
    """Why ``path`` cannot be read as a table ("is a directory", ...), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path}: is a directory, not a file"
    if not path.is_file() and path.exists():
        return f"{path}: not a regular file"
    return None


def decoded_lines(path, problems):
    """(line number, text) of each line of ``path`` that is UTF-8; the others go to ``problems``."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if lineno == 1 and raw.startswith(BOM):
                problems.append(f"{where}: the file starts with a UTF-8 byte order mark (BOM); "
                                "remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE")
                raw = raw[len(BOM):]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{where}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")


def read_table(path, problems, min_fields=1, max_fields=None):
    """Rows of a Kaldi table file; malformed, unsorted or duplicate lines go to ``problems``."""
    path = Path(path)
    rows, seen, prev = [], set(), None
    for lineno, line in decoded_lines(path, problems):
        where = f"{path}:{lineno}"
        text = line.rstrip("\n").strip()
        if not text:
            problems.append(f"{where}: empty line")
            continue
        parts = text.split(None, 1)
        key, rest = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        fields = rest.split()
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else f"{min_fields}..{max_fields or 'n'}"
            problems.append(f"{where}: {key}: expected {want} fields after the key, found {len(fields)}")
            continue
        if key in seen:
            problems.append(f"{where}: {key}: duplicate key")
            continue
        if prev is not None and key.encode() < prev.encode():
            problems.append(f"{where}: {key}: not sorted (comes after {prev}); sort with LC_ALL=C sort")
        seen.add(key)
        prev = key
        rows.append(Row(key, fields, rest, where))
    return rows
