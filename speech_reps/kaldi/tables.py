"""Reading Kaldi table files (``<key> <rest>`` lines) with the checks Kaldi's scripts make.

Kaldi requires every table sorted under ``LC_ALL=C`` (byte order) with unique keys; a problem is
reported as ``file:line: key: cause`` so the user can go straight to it.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    key: str
    fields: list  # the whitespace-split fields after the key
    rest: str  # everything after the key, as written (wav.scp commands keep their spacing)
    where: str  # "path:line"


def read_table(path, problems, min_fields=1, max_fields=None):
    """Rows of a Kaldi table file; malformed, unsorted or duplicate lines go to ``problems``."""
    path = Path(path)
    rows, seen, prev = [], set(), None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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

