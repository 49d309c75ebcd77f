"""wav2vec 2.0 and HuBERT encoders in PyTorch, built from a fairseq checkpoint's config.

Module and parameter names are fairseq's (Wav2Vec2Model / HubertModel without their training
heads). Batching is exact: the first layer's group norm (``extractor_mode: default``) uses each
utterance's valid frames only, padded frames are zeroed before the positional convolution and
masked in attention, and lengths follow the conv formula for every utterance.
"""

import torch
import torch.nn.functional as F
from torch import nn

from speech_reps.models.attention import padded_attention
from speech_reps.models.layers import run_blocks, with_input
from speech_reps.models.torch_device import small_to_device
from speech_reps.models.wav2vec_net import conv_lengths, eval_layers, masked_group_norm


class TransposeLast(nn.Module):
    def forward(self, x):
        return x.transpose(-2, -1)


class FeatureExtractor(nn.Module):
    """fairseq's wav2vec 2.0 ConvFeatureExtractionModel: conv -> [norm] -> GELU."""

    def __init__(self, layers, mode, conv_bias):
        super().__init__()
        self.layers, self.mode = layers, mode
        self.conv_layers = nn.ModuleList()
        in_d = 1
        for i, (dim, k, stride) in enumerate(layers):
            conv = nn.Conv1d(in_d, dim, k, stride=stride, bias=conv_bias)
            if mode == "layer_norm":
                norm = nn.Sequential(TransposeLast(), nn.LayerNorm(dim), TransposeLast())
                self.conv_layers.append(nn.Sequential(conv, nn.Identity(), norm, nn.GELU()))
            elif i == 0:  # "default": one group norm (a group per channel) in the first layer
                self.conv_layers.append(nn.Sequential(conv, nn.Identity(), nn.GroupNorm(dim, dim), nn.GELU()))
            else:
                self.conv_layers.append(nn.Sequential(conv, nn.Identity(), nn.GELU()))
            in_d = dim

    def forward(self, x, lengths):
        x = x.unsqueeze(1)
        for (dim, k, stride), block in zip(self.layers, self.conv_layers):
            x = block[0](x)
            lengths = conv_lengths(lengths, k, stride)
            if isinstance(block[2], nn.GroupNorm):
                x = masked_group_norm(x, lengths, block[2])
            elif len(block) == 4:
                x = block[2](x)
            x = block[-1](x)
        return x, lengths


class WeightNormConv1d(nn.Module):
    """Conv1d with weight = g * v / ||v|| (norm over all dims but 2), as torch's weight_norm(dim=2)."""

    def __init__(self, channels, kernel, groups):
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.zeros(channels, channels // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        norm = self.weight_v.norm(dim=(0, 1), keepdim=True)
        weight = self.weight_v * (self.weight_g / norm)
        return self._conv_forward(x, weight, self.bias)

    def _conv_forward(self, x, weight, bias):  # as nn.Conv1d's (see models/bf16_products.py)
        return F.conv1d(x, weight, bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    def __init__(self, kernel):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x):
        return x[:, :, :-self.remove] if self.remove else x


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask):
        B, T, D = x.shape
        split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        out = padded_attention(q, k, v, mask)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, D))


class EncoderLayer(nn.Module):
    """fairseq TransformerSentenceEncoderLayer (post-LN, or pre-LN with layer_norm_first)."""

    def __init__(self, dim, ffn, heads, activation, layer_norm_first):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = {"gelu": F.gelu, "relu": F.relu}[activation]
        self.layer_norm_first = layer_norm_first

    def forward(self, x, mask):
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), mask)
            return x + self.fc2(self.activation(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, mask))
        return self.final_layer_norm(x + self.fc2(self.activation(self.fc1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, k = cfg["encoder_embed_dim"], cfg["conv_pos"]
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, k, cfg["conv_pos_groups"]), SamePad(k), nn.GELU())
        self.layers = nn.ModuleList(
            EncoderLayer(dim, cfg["encoder_ffn_embed_dim"], cfg["encoder_attention_heads"],
                         cfg["activation_fn"], cfg["layer_norm_first"])
            for _ in range(cfg["encoder_layers"]))
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg["layer_norm_first"]

    def forward(self, x, padding_mask, layer=None):
        """Output of transformer layer ``layer`` (1-based); None: the model output (last layer,
        then the final LayerNorm in pre-LN models), as fairseq's extract_features; a tuple of
        layers: the list of their outputs, from one pass (models/layers.py)."""
        if padding_mask is not None:  # None: no padding in the batch
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = run_blocks(self.layers, x, layer, padding_mask)
        if self.layer_norm_first and layer is None:
            x = self.layer_norm(x)
        return x


class Wav2Vec2Net(nn.Module):
    """Wav2Vec2Model / HubertModel up to the encoder; training-only heads are not built."""

    def __init__(self, cfg):
        super().__init__()
        layers = eval_layers(cfg["conv_feature_layers"])
        self.feature_layers = layers
        embed = layers[-1][0]
        self.feature_extractor = FeatureExtractor(layers, cfg["extractor_mode"], cfg["conv_bias"])
        self.layer_norm = nn.LayerNorm(embed)
        self.post_extract_proj = (nn.Linear(embed, cfg["encoder_embed_dim"])
                                  if embed != cfg["encoder_embed_dim"] else None)
        self.encoder = TransformerEncoder(cfg)

    def forward(self, wave, lengths, layer=None):
        """wave (B, N) in [-1, 1]; returns (B, T, D) and valid lengths. layer 0: the projection."""
        features, lengths = self.feature_extractor(wave, lengths)
        x = self.layer_norm(features.transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        if layer == 0:
            return x, lengths
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= small_to_device(lengths, x.device)[:, None]
        if int(lengths.min()) == x.shape[1]:  # no padding (batch 1): attention without a mask is faster
            padding_mask = None
        if isinstance(layer, tuple):
            return with_input(layer, x, lambda deep: self.encoder(x, padding_mask, deep)), lengths
        return self.encoder(x, padding_mask, layer), lengths

