"""fairseq-format checkpoints with seeded random weights, built without fairseq.

Our nets use fairseq's module names, so their state dicts are fairseq state dicts; the files
hold them as fairseq does: {'args': Namespace} (wav2vec 1.0) or {'cfg': {'model', 'task'}}.
Training-only heads are added as fairseq has them, so loading must skip exactly those.
The parity test checks the port on checkpoints fairseq itself wrote.
"""

import argparse

import torch

SMALL_W2V = {  # wav2vec 1.0 with wav2vec_large's encoder and a short aggregator
    "conv_feature_layers": "[(32, 10, 5), (32, 8, 4), (32, 4, 2), (32, 4, 2), (32, 4, 2), (32, 1, 1), (32, 1, 1)]",
    "conv_aggregator_layers": "[(32, 2, 1), (48, 3, 1), (48, 4, 1)]",
    "skip_connections_agg": True, "residual_scale": 0.5, "log_compression": True, "activation": "relu",
    "prediction_steps": 3,
}
SMALL_W2V2 = {"conv_feature_layers": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2",
              "encoder_layers": 2, "encoder_embed_dim": 24, "encoder_ffn_embed_dim": 48,
              "encoder_attention_heads": 4, "conv_pos": 8, "conv_pos_groups": 4}


def _randomize(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.1) + (1.0 if p.dim() == 1 and p.shape[0] > 0 else 0))
    return net


def wav2vec_checkpoint(path, seed=0, **overrides):
    from speech_reps.models.wav2vec import DEFAULTS
    from speech_reps.models.wav2vec_net import Wav2VecNet

    args = {**DEFAULTS, **SMALL_W2V, **overrides}
    torch.manual_seed(seed)
    state = _randomize(Wav2VecNet(args), seed).state_dict()
    agg_dim, embed = 48, 32
    state["wav2vec_predictions.project_to_steps.weight"] = torch.zeros(agg_dim, embed, 1, args["prediction_steps"])
    state["wav2vec_predictions.project_to_steps.bias"] = torch.zeros(embed)
    torch.save({"args": argparse.Namespace(**args), "model": state}, path)
    return path


def wav2vec2_checkpoint(path, seed=0, normalize=False, hubert=False, **overrides):
    from speech_reps.models.wav2vec2 import DEFAULTS
    from speech_reps.models.wav2vec2_net import Wav2Vec2Net

    cfg = {**DEFAULTS, **SMALL_W2V2, **overrides}
    torch.manual_seed(seed)
    state = _randomize(Wav2Vec2Net(cfg), seed).state_dict()
    state["mask_emb"] = torch.zeros(cfg["encoder_embed_dim"])
    state["final_proj.weight"] = torch.zeros(16, cfg["encoder_embed_dim"])
    if hubert:
        state["label_embs_concat"] = torch.zeros(20, 16)
    else:
        state["quantizer.vars"] = torch.zeros(1, 8, 16)
        state["project_q.weight"] = torch.zeros(16, 16)
    torch.save({"cfg": {"model": cfg, "task": {"normalize": normalize}}, "model": state}, path)
    return path
