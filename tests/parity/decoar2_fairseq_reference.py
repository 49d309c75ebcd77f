"""Reference DeCoAR 2.0 outputs from fairseq's TransformerEncoder (runs in the fairseq parity
venv, not in .venv).

Builds the DeCoAR 2.0 encoder as the original toolkit does — a Linear input projection
(``post_extract_proj``) and fairseq.models.wav2vec.wav2vec2.TransformerEncoder with the
original's arguments (12 layers, 768 units, 12 heads, FFN 3072, conv positional embedding 128 /
16 groups, GELU, post-LN) — with seeded random weights, saves it in checkpoint_decoar2.pt's
layout ({'model': state_dict, 'args': Namespace}), and runs it in eval mode on the given
subsampled CMVN'd fbank:
  decoar2.pt    the checkpoint
  outputs.npz   <utt>/last, <utt>/layer1, <utt>/layer6: each utterance alone;
                batched/<utt>: all in one batch with fairseq's padding mask

Usage: python decoar2_fairseq_reference.py --inputs in.npz --out-dir DIR
"""

import argparse
import os

import numpy as np
import torch
from torch import nn

from fairseq.models.wav2vec.wav2vec2 import TransformerEncoder, Wav2Vec2Config

DECOAR2 = dict(encoder_embed_dim=768, encoder_layers=12, dropout=0.1, activation_dropout=0.0,
               dropout_input=0.1, attention_dropout=0.1, encoder_layerdrop=0.05, conv_pos=128,
               conv_pos_groups=16, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
               activation_fn="gelu", layer_norm_first=False)


class DeCoAR2Reference(nn.Module):
    def __init__(self, input_feat=80):
        super().__init__()
        cfg = Wav2Vec2Config(**DECOAR2)
        self.post_extract_proj = nn.Linear(input_feat, cfg.encoder_embed_dim)
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = TransformerEncoder(cfg)

    def forward(self, features, padding_mask=None, layer=None):
        x = self.dropout_input(self.post_extract_proj(features))
        return self.encoder(x, padding_mask=padding_mask, layer=layer)[0]


def randomize(model, seed):
    """Biases and norms start at 0 / 1: random values make a dropped or swapped one visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                scale, offset = (1.0, 0.5) if "norm" in name and name.endswith("weight") else (0.2, -0.1)
                p.copy_(torch.rand(p.shape, generator=g) * scale + offset)
            if name.endswith(("weight_g", "original0")):
                p.mul_(torch.rand(p.shape, generator=g) + 0.5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", required=True, help="npz of (T, 80) subsampled CMVN'd fbank")
    p.add_argument("--out-dir", required=True)
    args = p.parse_args()
    inputs = {k: v.astype(np.float32) for k, v in np.load(args.inputs).items()}
    torch.manual_seed(5)
    model = DeCoAR2Reference()
    randomize(model, 6)
    model.eval()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(arch="decoar2", **DECOAR2)},
               os.path.join(args.out_dir, "decoar2.pt"))
    outputs = {}
    with torch.no_grad():
        for utt, feats in inputs.items():
            x = torch.from_numpy(feats)[None]
            outputs[f"{utt}/last"] = model(x)[0].numpy()
            outputs[f"{utt}/layer1"] = model(x, layer=0)[0].numpy()
            outputs[f"{utt}/layer6"] = model(x, layer=5)[0].numpy()
        keys = list(inputs)
        lengths = torch.tensor([len(inputs[k]) for k in keys])
        padded = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(inputs[k]) for k in keys], batch_first=True)
        mask = torch.arange(padded.shape[1])[None, :] >= lengths[:, None]
        batched = model(padded, padding_mask=mask)
        for i, k in enumerate(keys):
            outputs[f"batched/{k}"] = batched[i, :lengths[i]].numpy()
    np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
    print(f"decoar2: {len(inputs)} utterances")


if __name__ == "__main__":
    main()
