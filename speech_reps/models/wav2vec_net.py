"""wav2vec 1.0 (Schneider et al., 2019) in PyTorch, built from a fairseq checkpoint's config.

Module and parameter names are fairseq's, so the checkpoint's ``model`` state dict loads as is.
Batching is exact: group norm over time uses statistics of each utterance's valid frames only
(zero padding would otherwise change them), and every layer tracks the valid lengths.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_lengths(lengths, kernel, stride):
    """Output lengths of an unpadded Conv1d: floor((L - k) / s) + 1, clamped at 0."""
    return torch.clamp(torch.div(lengths - kernel, stride, rounding_mode="floor") + 1, min=0)


def receptive_field(layers):
    """(receptive field in samples, total stride) of a conv stack [(dim, kernel, stride), ...]."""
    field, jump = 1, 1
    for _, k, stride in layers:
        field += (k - 1) * jump
        jump *= stride
    return field, jump


def masked_group_norm(x, lengths, norm, eps=1e-5):
    """GroupNorm ``norm`` on x (B, C, T) with statistics over each utterance's t < lengths[b].

    Each utterance's statistics come from its own contiguous slice, the very computation a
    batch of one does, so batched output equals one-by-one output; padding stays untouched.
    Works in place on x (a fresh conv output) to keep the memory of long batches down.
    """
    B, C, T = x.shape
    G = norm.num_groups
    if all(int(n) == T for n in lengths):  # no padding (batch 1 on a CPU): torch's fused kernel
        return F.group_norm(x, G, norm.weight, norm.bias, eps)
    for b in range(B):
        length = int(lengths[b])
        if length == 0:
            continue
        xb = x[b, :, :length].contiguous()
        var, mean = torch.var_mean(xb.reshape(G, -1), dim=1, unbiased=False, keepdim=True)
        y = ((xb.reshape(G, -1) - mean) / torch.sqrt(var + eps)).reshape(C, length)
        if norm.affine:
            y = y * norm.weight[:, None] + norm.bias[:, None]
        x[b, :, :length] = y
    return x


def _activation(name):
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name}")


class FeatureExtractor(nn.Module):
    """fairseq ConvFeatureExtractionModel (wav2vec 1.0): conv -> group norm (1 group) -> act."""

    def __init__(self, layers, log_compression, skip_connections, residual_scale, affine, activation):
        super().__init__()
        self.layers = layers
        self.conv_layers = nn.ModuleList()
        in_d = 1
        for dim, k, stride in layers:
            self.conv_layers.append(nn.Sequential(
                nn.Conv1d(in_d, dim, k, stride=stride, bias=False), nn.Identity(),
                nn.GroupNorm(1, dim, affine=affine), _activation(activation)))
            in_d = dim
        self.log_compression = log_compression
        self.skip_connections = skip_connections
        self.residual_scale = math.sqrt(residual_scale)

    def forward(self, x, lengths):
        """x (B, N) waveform; returns (B, C, T) and the valid lengths T_b."""
        x = x.unsqueeze(1)
        for (dim, k, stride), block in zip(self.layers, self.conv_layers):
            residual = x
            x = block[0](x)
            lengths = conv_lengths(lengths, k, stride)
            x = block[3](masked_group_norm(x, lengths, block[2]))
            if self.skip_connections and x.size(1) == residual.size(1):
                # fairseq subsamples the residual by the ratio of the (here: padded) lengths
                tsz, r_tsz = x.size(2), residual.size(2)
                x = (x + residual[..., :: r_tsz // tsz][..., :tsz]) * self.residual_scale
        if self.log_compression:
            x = (x.abs() + 1).log()
        return x, lengths


class Aggregator(nn.Module):
    """fairseq ConvAggegator: causal conv (left padding k-1) -> group norm -> act, with residuals."""

    def __init__(self, layers, embed, skip_connections, residual_scale, affine, conv_bias, zero_pad, activation):
        super().__init__()
        self.conv_layers = nn.Sequential()
        self.residual_proj = nn.ModuleList()
        in_d = embed
        for dim, k, stride in layers:
            if stride != 1:
                raise ValueError(f"aggregator layer ({dim}, {k}, {stride}): only stride 1 is supported")
            pad = k - 1  # fairseq: ka + kb with ka = k // 2, kb = ka - 1 for even k
            self.residual_proj.append(nn.Conv1d(in_d, dim, 1, bias=False)
                                      if in_d != dim and skip_connections else None)
            self.conv_layers.append(nn.Sequential(
                nn.ConstantPad1d((pad, 0), 0.0) if zero_pad else nn.ReplicationPad1d((pad, 0)),
                nn.Conv1d(in_d, dim, k, stride=1, bias=conv_bias), nn.Identity(),
                nn.GroupNorm(1, dim, affine=affine), _activation(activation)))
            in_d = dim
        self.skip_connections = skip_connections
        self.residual_scale = math.sqrt(residual_scale)

    def forward(self, x, lengths):
        for rproj, block in zip(self.residual_proj, self.conv_layers):
            residual = x
            x = block[4](masked_group_norm(block[1](block[0](x)), lengths, block[3]))
            if self.skip_connections:
                if rproj is not None:
                    residual = rproj(residual)
                x = (x + residual) * self.residual_scale
        return x


class Wav2VecNet(nn.Module):
    """Encoder (z) and aggregator (c) of fairseq's Wav2VecModel; returns (B, C, T), lengths."""

    def __init__(self, cfg):
        super().__init__()
        self.feature_layers = eval_layers(cfg["conv_feature_layers"])
        embed = self.feature_layers[-1][0]
        affine = not cfg["non_affine_group_norm"]
        self.feature_extractor = FeatureExtractor(
            self.feature_layers, cfg["log_compression"], cfg["skip_connections_feat"],
            cfg["residual_scale"], affine, cfg["activation"])
        self.feature_aggregator = Aggregator(
            eval_layers(cfg["conv_aggregator_layers"]), embed, cfg["skip_connections_agg"],
            cfg["residual_scale"], affine, not cfg["no_conv_bias"], cfg["agg_zero_pad"], cfg["activation"])

    def forward(self, wave, lengths, output="c"):
        z, lengths = self.feature_extractor(wave, lengths)
        if output == "z":
            return z, lengths
        return self.feature_aggregator(z, lengths), lengths


def eval_layers(text):
    """A fairseq conv spec such as "[(512, 10, 5)] + [(512, 3, 2)] * 4" as a list of int triples.

    fairseq eval()s this string; here only list/tuple literals, ``+`` and ``*`` are evaluated,
    so a checkpoint's string never runs as code.
    """
    import ast

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            repeat = right if isinstance(left, list) else left if isinstance(right, list) else None
            if isinstance(node.op, ast.Mult) and isinstance(repeat, int) and not 0 <= repeat <= 1000:
                raise ValueError(f"invalid conv layer spec {text!r} (a repeat of {repeat})")
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"invalid conv layer spec {text!r}")

    try:
        tree = ast.parse(text, mode="eval") if isinstance(text, str) else None
    except (SyntaxError, ValueError):
        raise ValueError(f"invalid conv layer spec {text!r}") from None
    layers = value(tree.body) if tree is not None else text
    if not isinstance(layers, list) or not all(
            isinstance(t, (tuple, list)) and len(t) == 3 and all(isinstance(v, int) for v in t) for t in layers):
        raise ValueError(f"invalid conv layer spec {text!r}")
    return [tuple(t) for t in layers]
