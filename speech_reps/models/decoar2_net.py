"""DeCoAR 2.0's encoder in PyTorch: a Linear input projection and wav2vec 2.0's Transformer.

Parameter names are the original checkpoint's (``post_extract_proj``, then fairseq's
``encoder.pos_conv`` / ``encoder.layers.<i>`` / ``encoder.layer_norm``); the Transformer is the
wav2vec 2.0 port's (speech_reps/models/wav2vec2_net.py): padded frames are zeroed before the
positional convolution and masked in attention, so a batch gives what each utterance gives alone.
"""

import torch
from torch import nn

from speech_reps.models.layers import with_input
from speech_reps.models.torch_device import small_to_device
from speech_reps.models.wav2vec2_net import TransformerEncoder


class DeCoAR2Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.post_extract_proj = nn.Linear(cfg["input_feat"], cfg["encoder_embed_dim"])
        self.encoder = TransformerEncoder(cfg)

    def forward(self, x, lengths, layer=None):
        """x (B, T, input_feat), lengths (B,); (B, T, D): transformer layer ``layer``'s output
        (1-based; None: the last; 0: the projection, the transformer's input)."""
        x = self.post_extract_proj(x)
        if layer == 0:
            return x
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= small_to_device(lengths, x.device)[:, None]
        if isinstance(layer, tuple):  # several layers, one pass (models/layers.py)
            return with_input(layer, x, lambda deep: self.encoder(x, padding_mask, deep))
        return self.encoder(x, padding_mask, layer)
