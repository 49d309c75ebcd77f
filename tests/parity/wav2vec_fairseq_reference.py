"""Reference wav2vec / wav2vec 2.0 / HuBERT outputs from fairseq itself (runs in the fairseq
parity venv, not in .venv).

Builds fairseq's own models with seeded random weights — wav2vec 1.0 with the real
wav2vec_large architecture, small wav2vec 2.0 (group-norm/post-LN and layer-norm/pre-LN kinds)
and HuBERT configs, and wav2vec 2.0 / HuBERT at base size (fairseq's config defaults: 12 layers
x 768, wav2vec_small's and hubert_base_ls960's shape) — saves checkpoints the way fairseq checkpoints hold them (an argparse
Namespace in 'args' for wav2vec 1.0, an omegaconf DictConfig or a plain dict in 'cfg' for the
others), runs them on each utterance alone, and writes the outputs.

Usage: python wav2vec_fairseq_reference.py --audio audio.npz --out-dir DIR [--models a,b]
  writes DIR/<name>.pt and DIR/<name>.npz (keys <utt>/<output>); --models: some of
  wav2vec_large, wav2vec2_gn, wav2vec2_ln, hubert (the default), wav2vec2_base, hubert_base
"""

import argparse
import dataclasses
import os

import numpy as np
import torch
from omegaconf import OmegaConf

from fairseq.data import Dictionary
from fairseq.models.hubert import HubertConfig, HubertModel
from fairseq.models.wav2vec import Wav2Vec2Config, Wav2Vec2Model, Wav2VecConfig, Wav2VecModel
from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

WAV2VEC_LARGE = dict(  # fairseq's examples/wav2vec README, "wav2vec_large"
    conv_feature_layers="[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), (512, 1, 1), (512, 1, 1)]",
    conv_aggregator_layers="[(512, 2, 1), (512, 3, 1), (512, 4, 1), (512, 5, 1), (512, 6, 1), (512, 7, 1), "
                           "(512, 8, 1), (512, 9, 1), (512, 10, 1), (512, 11, 1), (512, 12, 1), (512, 13, 1)]",
    skip_connections_agg=True, residual_scale=0.5, log_compression=True, num_negatives=10,
    infonce=False, activation="relu",
)
SMALL_TRANSFORMER = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                         encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4)


def randomize_norms(model, seed):
    """Norm layers start at weight 1, bias 0; random values make a dropped one visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("norm" in name or "conv_layers.0.2" in name or ".2.1." in name) and p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=g) * (1.0 if name.endswith("weight") else 0.2)
                        + (0.5 if name.endswith("weight") else -0.1))
            if name.endswith("weight_g"):
                p.mul_(torch.rand(p.shape, generator=g) + 0.5)


def wav2vec_large(audio):
    cfg = Wav2VecConfig(**WAV2VEC_LARGE)
    model = Wav2VecModel(cfg).eval()
    randomize_norms(model, 1)
    ckpt = {"args": argparse.Namespace(**dataclasses.asdict(cfg)), "model": model.state_dict()}
    outputs = {}
    with torch.no_grad():
        for utt, wave in audio.items():
            z = model.feature_extractor(torch.from_numpy(wave)[None])
            c = model.feature_aggregator(z)
            outputs[f"{utt}/z"], outputs[f"{utt}/c"] = z[0].T.numpy(), c[0].T.numpy()
    return ckpt, outputs


def transformer_outputs(model, audio, normalize, extract):
    outputs = {}
    with torch.no_grad():
        for utt, wave in audio.items():
            x = torch.from_numpy(wave)[None]
            if normalize:
                x = torch.nn.functional.layer_norm(x, x.shape)
            outputs[f"{utt}/last"] = extract(x, None)[0].numpy()
            outputs[f"{utt}/layer1"] = extract(x, 1)[0].numpy()
            features = model.layer_norm(model.feature_extractor(x).transpose(1, 2))
            outputs[f"{utt}/layer0"] = model.post_extract_proj(features)[0].numpy()
    return outputs


def wav2vec2(audio, kind, sizes=SMALL_TRANSFORMER):
    if kind == "group_norm":  # like wav2vec_small: GN in the first conv, post-LN, raw waveform
        cfg = Wav2Vec2Config(**sizes, extractor_mode="default")
        normalize = False
    else:  # like wav2vec_vox / large-lv60: LN in every conv, pre-LN, normalised waveform
        cfg = Wav2Vec2Config(**sizes, extractor_mode="layer_norm", layer_norm_first=True,
                             conv_bias=True)
        normalize = True
    torch.manual_seed(2)
    model = Wav2Vec2Model(cfg).eval()
    randomize_norms(model, 2)
    model_cfg = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    task = {"_name": "audio_pretraining", "normalize": normalize, "sample_rate": 16000}
    if kind == "group_norm":  # pickled omegaconf objects, as many released checkpoints hold
        saved_cfg = OmegaConf.create({"model": model_cfg, "task": task})
    else:
        saved_cfg = {"model": model_cfg, "task": task}
    ckpt = {"cfg": saved_cfg, "model": model.state_dict()}

    def extract(x, layer):
        return model.extract_features(x, None, mask=False, layer=None if layer is None else layer - 1)["x"]

    return ckpt, transformer_outputs(model, audio, normalize, extract)


def hubert(audio, sizes=SMALL_TRANSFORMER):
    cfg = HubertConfig(**sizes, extractor_mode="default", label_rate=50)
    task_cfg = HubertPretrainingConfig(data="unused", labels=["km"], normalize=False)
    dictionary = Dictionary()
    for i in range(20):
        dictionary.add_symbol(str(i))
    torch.manual_seed(3)
    model = HubertModel(cfg, task_cfg, [dictionary]).eval()
    randomize_norms(model, 3)
    ckpt = {"cfg": {"model": OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True),
                    "task": OmegaConf.to_container(OmegaConf.structured(task_cfg), enum_to_str=True)},
            "model": model.state_dict()}

    def extract(x, layer):
        return model.extract_features(x, None, mask=False, output_layer=layer)[0]

    return ckpt, transformer_outputs(model, audio, False, extract)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--audio", required=True, help="npz of 1-D float32 waveforms in [-1, 1]")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--models", default="wav2vec_large,wav2vec2_gn,wav2vec2_ln,hubert")
    args = p.parse_args()
    audio = {k: v.astype(np.float32) for k, v in np.load(args.audio).items()}
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(1)
    builders = {"wav2vec_large": lambda: wav2vec_large(audio),
                "wav2vec2_gn": lambda: wav2vec2(audio, "group_norm"),
                "wav2vec2_ln": lambda: wav2vec2(audio, "layer_norm"),
                "hubert": lambda: hubert(audio),
                "wav2vec2_base": lambda: wav2vec2(audio, "group_norm", sizes={}),  # the config's defaults
                "hubert_base": lambda: hubert(audio, sizes={})}
    for name in args.models.split(","):
        ckpt, outputs = builders[name]()
        torch.save(ckpt, os.path.join(args.out_dir, f"{name}.pt"))
        np.savez(os.path.join(args.out_dir, f"{name}.npz"), **outputs)
        print(name, "ok")


if __name__ == "__main__":
    main()
