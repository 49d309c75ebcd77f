"""BERTphone's encoder in PyTorch: GluonNLP 0.8's BERT encoder behind a Dense input layer.

Module and parameter names follow the Gluon blocks' attribute names (``embed``,
``encoder.transformer_cells.<i>.attention_cell.proj_query`` ...), so the checkpoint map stays
readable; Gluon's LayerNorm gamma/beta are weight/bias here. Computation, as GluonNLP 0.8.3's
BaseTransformerEncoder with use_bert_encoder=True and scale_embed=False (eval mode, no dropout):
  x = Dense(in -> units)(stacked MFCC) + position_weight[:T]; x = LayerNorm(x)
  per cell (post-LN): x = LN(x + proj(MultiHeadAttention(x))); x = LN(x + ffn_2(GELU(ffn_1(x))))
LayerNorm epsilon 1e-12 (BERTLayerNorm), GELU the exact erf form, attention scaled by
1/sqrt(head dim); padded keys are masked, padded positions are zeroed in the output.
"""

import torch
import torch.nn.functional as F
from torch import nn

from speech_reps.models.attention import padded_attention
from speech_reps.models.layers import run_blocks, with_input
from speech_reps.models.torch_device import small_to_device

LAYER_NORM_EPS = 1e-12


class MultiHeadAttention(nn.Module):
    def __init__(self, units, heads):
        super().__init__()
        self.heads = heads
        self.proj_query, self.proj_key = nn.Linear(units, units), nn.Linear(units, units)
        self.proj_value = nn.Linear(units, units)

    def forward(self, x, key_padding_mask):
        B, T, D = x.shape
        split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.proj_query(x)), split(self.proj_key(x)), split(self.proj_value(x))
        mask = ~key_padding_mask[:, None, None, :]
        out = padded_attention(q, k, v, mask)
        return out.transpose(1, 2).reshape(B, T, D)


class PositionwiseFFN(nn.Module):
    def __init__(self, units, hidden):
        super().__init__()
        self.ffn_1, self.ffn_2 = nn.Linear(units, hidden), nn.Linear(hidden, units)
        self.layer_norm = nn.LayerNorm(units, eps=LAYER_NORM_EPS)

    def forward(self, x):
        return self.layer_norm(x + self.ffn_2(F.gelu(self.ffn_1(x))))


class EncoderCell(nn.Module):
    def __init__(self, units, hidden, heads):
        super().__init__()
        self.attention_cell = MultiHeadAttention(units, heads)
        self.proj = nn.Linear(units, units)
        self.layer_norm = nn.LayerNorm(units, eps=LAYER_NORM_EPS)
        self.ffn = PositionwiseFFN(units, hidden)

    def forward(self, x, key_padding_mask):
        x = self.layer_norm(x + self.proj(self.attention_cell(x, key_padding_mask)))
        return self.ffn(x)


class BERTEncoder(nn.Module):
    def __init__(self, units, hidden, heads, layers, max_length):
        super().__init__()
        self.position_weight = nn.Parameter(torch.zeros(max_length, units))
        self.layer_norm = nn.LayerNorm(units, eps=LAYER_NORM_EPS)
        self.transformer_cells = nn.ModuleList(EncoderCell(units, hidden, heads) for _ in range(layers))

    def forward(self, x, lengths, layer=None):
        T = x.shape[1]
        if T > self.position_weight.shape[0]:
            raise ValueError(f"{T} frames: more than the {self.position_weight.shape[0]} learned positions")
        padding = torch.arange(T, device=x.device)[None, :] >= small_to_device(lengths, x.device)[:, None]
        x = self.layer_norm(x + self.position_weight[:T])
        if isinstance(layer, tuple):  # several layers, one pass (models/layers.py)
            return [y.masked_fill(padding[..., None], 0.0) for y in
                    with_input(layer, x, lambda deep: run_blocks(self.transformer_cells, x, deep, padding))]
        x = run_blocks(self.transformer_cells, x, layer, padding)
        return x.masked_fill(padding[..., None], 0.0)


class BERTphoneNet(nn.Module):
    """Dense input layer + BERT encoder; ``sizes`` = (input_dim, units, hidden, heads, layers, max_length)."""

    def __init__(self, input_dim, units, hidden, heads, layers, max_length):
        super().__init__()
        self.embed = nn.Linear(input_dim, units)
        self.encoder = BERTEncoder(units, hidden, heads, layers, max_length)

    def forward(self, x, lengths, layer=None):
        """x (B, T, input_dim) stacked features, lengths (B,); (B, T, units). ``layer`` N: the
        output of encoder cell N (1-based); 0: the embedding after position and LayerNorm."""
        return self.encoder(self.embed(x), lengths, layer)
