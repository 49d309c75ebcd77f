"""Small DeCoAR 2.0 checkpoints in checkpoint_decoar2.pt's layout, for tests (seeded, random)."""

import argparse

import torch

SMALL = {"input_feat": 80, "encoder_embed_dim": 48, "encoder_layers": 2, "encoder_ffn_embed_dim": 96,
         "conv_pos": 16, "conv_pos_groups": 4, "encoder_attention_heads": 12, "activation_fn": "gelu",
         "layer_norm_first": False}


def random_state(seed=0, scale=0.2, **sizes):
    """Seeded random weights: matrices N(0, scale), vectors N(0, 0.1), LayerNorm gains N(1, 0.1)."""
    from speech_reps.models.decoar2_net import DeCoAR2Net

    torch.manual_seed(seed)
    net = DeCoAR2Net({**SMALL, **sizes})
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn(p.shape) * (0.1 if p.dim() == 1 else scale) + (1.0 if "norm.weight" in name else 0.0))
    return net.state_dict()


def write_checkpoint(path, state, extra=None):
    """{'model': state_dict, 'args': Namespace}, as the original checkpoint holds it."""
    torch.save({"model": {**state, **(extra or {})}, "args": argparse.Namespace(arch="decoar2")}, path)
    return path
