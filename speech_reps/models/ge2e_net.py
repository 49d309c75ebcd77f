"""The GE2E speaker encoder in PyTorch (imported only when a ge2e model is built).

A stack of unidirectional LSTMs over a partial utterance's mel frames; the top layer's last
hidden state goes through Linear + ReLU and is scaled to unit length (no epsilon, as trained).
"""

import torch
from torch import nn


class GE2EEncoder(nn.Module):
    def __init__(self, n_mels=40, hidden=256, layers=3, embedding=256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)

    def forward(self, mels):
        """(B, T, n_mels) equal-length partial utterances -> (B, embedding) unit vectors."""
        _, (hidden, _) = self.lstm(mels)
        embeds = torch.relu(self.linear(hidden[-1]))
        return embeds / torch.linalg.vector_norm(embeds, dim=1, keepdim=True)
