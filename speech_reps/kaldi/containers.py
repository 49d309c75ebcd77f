"""What an audio file's header declares: the checks libsndfile does not make.

- A WAV's data chunk size: libsndfile quietly clamps it to what the file holds, so a truncated
  WAV reads as a shorter recording. Kaldi's wave reader instead requires the declared size unless
  the sizes are the streaming placeholders (0xFFFFFFFF); we follow it, and also take 0x7FFFF000
  and up as placeholders (streaming writers that cannot seek back write such maxima).
  NIST SPHERE's sample_count is clamped the same way, and checked the same way.
- MPEG audio has no header of its own: libsndfile takes any data whose first bytes look like an
  MPEG frame header for MPEG, headerless 16-bit PCM included (its decoded "audio" is noise). Here
  MPEG counts as such only with an ID3 tag or a chain of consistent frame headers.
"""

import re
import struct

STREAMED = 0x7FFFF000  # a data size of at least this is a streaming writer's placeholder


def declared_frames(head):
    """The number of sample frames a WAV's data chunk or a NIST SPHERE header's sample_count
    declares, from the file's first bytes ``head`` (0 when unknown: a streaming placeholder, or
    the chunk lies beyond ``head``); None for other containers (libsndfile checks them)."""
    if head[:7] == b"NIST_1A":
        count = re.search(rb"\nsample_count -i (\d+)", head[:4096])
        return int(count[1]) if count else 0
    chunk = _wav_data_chunk(head)
    if chunk is None:
        return None
    pos, size, block_align = chunk
    return 0 if pos is None or size >= STREAMED or block_align == 0 else size // block_align


def wav_entry_size(head):
    """The bytes of the WAV that starts ``head`` (up to its data chunk's end), read from its
    chunks; None when ``head`` does not start a WAV, 0 when its data chunk lies beyond ``head``
    or has a streaming placeholder's size (no end to tell)."""
    chunk = _wav_data_chunk(head)
    if chunk is None:
        return None
    pos, size, _ = chunk
    return 0 if pos is None or size >= STREAMED else pos + 8 + size


def _wav_data_chunk(head):
    """(offset, size, the fmt chunk's block align) of the data chunk of the WAV (RIFF or RIFX)
    that starts ``head``; offset None when it lies beyond ``head``; None when ``head`` is no WAV."""
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    order = "<" if head[:4] == b"RIFF" else ">"
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from(f"{order}I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack_from(f"{order}H", head, pos + 20)[0]
        if chunk == b"data":
            return pos, size, block_align
        pos += 8 + size + (size & 1)
    return None, 0, block_align


# kbit/s by bitrate index 1..14, for (MPEG-1?, layer)
_BITRATES = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(data, pos):
    """((version, layer, rate), frame length in bytes) of the MPEG frame header at ``pos``, or None."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[pos + 1] >> 3) & 3, 4 - ((data[pos + 1] >> 1) & 3)
    bitrate_index, rate_index, padding = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3, (data[pos + 2] >> 1) & 1
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values (or a free bitrate, whose frames cannot be chained)
    bitrate = _BITRATES[(version == 3, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if layer == 2 or version == 3 else 72) * bitrate // rate + padding
    return (version, layer, rate), length


def looks_like_mpeg(head, frames=3):
    """Whether ``head`` (a file's first bytes) starts as MPEG audio: an ID3 tag, or ``frames``
    consecutive frame headers of one version, layer and rate (fewer when ``head`` ends exactly
    after the last)."""
    if head[:3] == b"ID3":
        return True
    first = _mpeg_frame(head, 0)
    if first is None:
        return False
    pos = 0
    for _ in range(frames):
        frame = _mpeg_frame(head, pos)
        if frame is None:
            return pos == len(head) and pos > 0
        if frame[0] != first[0]:
            return False
        pos += frame[1]
    return True
