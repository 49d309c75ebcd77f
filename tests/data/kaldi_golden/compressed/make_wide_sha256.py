"""Writes wide_sha256.txt: the SHA-256 of every matrix in real Kaldi's wide_method{1..7}.ark and
wide_method1_decompressed.ark (too large to keep here), one line "<archive> <key> <bytes> <sha256>"
per matrix object (the bytes after "<key> \\0B"). Run from the golden set's directory:
python make_wide_sha256.py /path/to/golden/kaldi/compressed > wide_sha256.txt"""
import hashlib
import struct
import sys
from pathlib import Path


def objects(raw):
    """(key, object bytes) of a binary ark of CM/CM2/CM3/FM matrices."""
    pos = 0
    while pos < len(raw):
        space = raw.index(b" ", pos)
        key, pos = raw[pos:space].decode(), space + 3  # "<key> \0B"
        token = raw[pos:raw.index(b" ", pos) + 1]
        if token == b"FM ":
            rows, cols = struct.unpack_from("<xixi", raw, pos + 3)
            size = 13 + 4 * rows * cols
        else:
            rows, cols = struct.unpack_from("<ii", raw, pos + len(token) + 8)
            per_element = {b"CM ": 1, b"CM2 ": 2, b"CM3 ": 1}[token]
            size = len(token) + 16 + rows * cols * per_element + (8 * cols if token == b"CM " else 0)
        yield key, raw[pos:pos + size]
        pos += size


golden = Path(sys.argv[1])
names = [f"wide_method{m}.ark" for m in range(1, 8)] + ["wide_method1_decompressed.ark"]
for name in names:
    for key, obj in objects((golden / name).read_bytes()):
        print(name, key, len(obj), hashlib.sha256(obj).hexdigest())
