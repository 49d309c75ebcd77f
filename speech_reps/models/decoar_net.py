"""The DeCoAR encoder in PyTorch (imported only when a DeCoAR model is built).

Linear(in -> H, no activation), then two separate unidirectional L-layer LSTMs: the forward
one reads the projection left to right; the backward one reads each utterance reversed
within its own length, and its output is reversed back. Output [forward | backward], 2H.
(Not ``bidirectional=True``: that would feed both directions into every next layer.)
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def reverse_within_lengths(x, lengths):
    """Reverse each row of x (B, T, D) over its first lengths[b] frames; padding stays put."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(0)
    lens = lengths.to(x.device).unsqueeze(1)
    index = torch.where(t < lens, lens - 1 - t, t)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class DeCoAREncoder(nn.Module):
    def __init__(self, input_dim, hidden=1024, layers=4):
        super().__init__()
        self.proj = nn.Linear(input_dim, hidden)
        self.forward_lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.backward_lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)

    def _run(self, lstm, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=True)
        out, _ = lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def forward(self, feats, lengths):
        """feats (B, T, in) sorted by decreasing ``lengths`` (B,); returns (B, T, 2H), zero padded."""
        h = self.proj(feats)
        forward = self._run(self.forward_lstm, h, lengths)
        backward = self._run(self.backward_lstm, reverse_within_lengths(h, lengths), lengths)
        return torch.cat([forward, reverse_within_lengths(backward, lengths)], dim=-1)
