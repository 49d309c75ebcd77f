"""The DeCoAR encoder in PyTorch (imported only when a DeCoAR model is built).

Linear(in -> H, no activation), then two separate unidirectional L-layer LSTMs: the forward
one reads the projection left to right; the backward one reads each utterance reversed
within its own length, and its output is reversed back. Output [forward | backward], 2H.
(Not ``bidirectional=True``: that would feed both directions into every next layer.)

Both directions run over time in chunks of ``chunk`` frames, each chunk starting from the LSTM
state the previous one ended in. That is the same recurrence as one call over the whole
utterance, so the result is the same (to float rounding), while the working memory (input
projection, gates) stays that of one chunk: an hour-long recording needs little more than its
output. Padding sits after each utterance's frames in both reading orders, so it never reaches
a real frame and no packing is needed.
"""

import torch
from torch import nn

from speech_reps.models.torch_device import small_to_device

CHUNK_FRAMES = 1000


def reversed_index(lengths, start, stop):
    """(B, stop - start) source frame of reversed time steps start..stop-1 of each utterance;
    steps past an utterance's length map to themselves (padding stays padding)."""
    t = torch.arange(start, stop, device=lengths.device).unsqueeze(0)
    lens = lengths.unsqueeze(1)
    return torch.where(t < lens, lens - 1 - t, t)


class DeCoAREncoder(nn.Module):
    def __init__(self, input_dim, hidden=1024, layers=4):
        super().__init__()
        self.proj = nn.Linear(input_dim, hidden)
        self.forward_lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.backward_lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self._side_streams = {}  # device -> the backward direction's CUDA stream

    def forward(self, feats, lengths, chunk=CHUNK_FRAMES, out=None):
        """feats (B, T, in), zero padded after each utterance's ``lengths`` (B,); returns
        (B, T, 2H) (into ``out`` when given); frames past an utterance's length are garbage.
        On a GPU the two directions, independent until the output, run at once on two streams
        (the same kernels on the same inputs: the same bits as one after the other)."""
        B, T, _ = feats.shape
        H = self.proj.out_features
        if out is None:
            out = feats.new_empty((B, T, 2 * H))
        lengths = small_to_device(lengths, feats.device)
        if not feats.is_cuda:
            self._left_to_right(feats, chunk, out[:, :, :H])
            self._right_to_left(feats, lengths, chunk, out[:, :, H:])
            return out
        main = torch.cuda.current_stream(feats.device)
        side = self._side_stream(feats.device)
        side.wait_stream(main)  # feats, lengths and out are ready
        with torch.cuda.stream(side):
            self._right_to_left(feats, lengths, chunk, out[:, :, H:])
        self._left_to_right(feats, chunk, out[:, :, :H])
        main.wait_stream(side)  # what comes after sees both halves; nothing is freed before
        return out

    def _side_stream(self, device):
        """The backward direction's stream on ``device``, made once: torch hands out new streams
        round robin from a pool of 32, so a stream made per call would, every so often, be one
        the engine's writer or copies work on (engine/output.py), and each would wait for the
        other's work."""
        if device not in self._side_streams:
            self._side_streams[device] = torch.cuda.Stream(device)
        return self._side_streams[device]

    def _left_to_right(self, feats, chunk, out):
        state = None
        for start in range(0, feats.shape[1], chunk):
            stop = min(feats.shape[1], start + chunk)
            y, state = self.forward_lstm(self.proj(feats[:, start:stop]), state)
            out[:, start:stop] = y

    def _right_to_left(self, feats, lengths, chunk, out):
        state = None
        H = out.shape[2]
        for start in range(0, feats.shape[1], chunk):
            stop = min(feats.shape[1], start + chunk)
            index = reversed_index(lengths, start, stop).unsqueeze(-1)
            x = feats.gather(1, index.expand(-1, -1, feats.shape[2]))
            y, state = self.backward_lstm(self.proj(x), state)
            out.scatter_(1, index.expand(-1, -1, H), y)
