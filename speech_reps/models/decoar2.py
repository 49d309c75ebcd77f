"""DeCoAR 2.0 (Ling & Liu, 2020): 768-dim representations every 20 ms.

Reads the original ``checkpoint_decoar2.pt`` (a torch pickle whose ``model`` entry is the state
dict, unpickled with an allow-list, so it cannot run code) and runs the encoder in PyTorch in
eval mode: no dropout, no LayerDrop, so features are the same on every run (the original
featurizer left both on). Front end (conf/decoar2.yaml): Kaldi fbank, 80 bins, dither 0, per-
utterance CMVN with variances; then every second frame is kept (frames 0, 2, 4, ...: the
original drops the others, it does not stack them): ceil(T/2) frames at 20 ms.
``--layer N``: transformer layer N's output (default: the last, the original's output; 0: the
input projection).
"""

import logging
from dataclasses import dataclass

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.frontend import FeatureOptions, FrontEndSpec, choose_backend
from speech_reps.models.base import Featurizer
from speech_reps.models.config import find_params, load_config
from speech_reps.models.declaration import ModelSpec, WeightFile
from speech_reps.models.layers import check_layers, joined, stacked_dim
from speech_reps.models.registry import register

log = logging.getLogger(__name__)

SPEC = ModelSpec(
    name="decoar2", summary="DeCoAR 2.0 layer (`--layer N`), `checkpoint_decoar2.pt`", dim="768",
    frame_shift="20 ms", input_rate=16000,
    input="16 kHz; 80-dim fbank, dither 0, + per-utterance CMVN, every second frame",
    options=("params", "config", "feature_config", "cmvn", "norm_vars", "backend", "layer", "device", "gpu",
             "dtype"),
    weights=(WeightFile("checkpoint_decoar2.pt", "https://github.com/awslabs/speech-representations/releases/"
                        "download/decoar2/checkpoint_decoar2.pt"),))
SUBSAMPLE = 2  # fbank frames per DeCoAR 2.0 frame
# the original DeCoAR2 model's fixed architecture; sizes are read from the weights where they show
ARCHITECTURE = {"encoder_embed_dim": 768, "encoder_layers": 12, "encoder_ffn_embed_dim": 3072,
                "conv_pos": 128, "conv_pos_groups": 16, "activation_fn": "gelu", "layer_norm_first": False}


@dataclass
class DeCoAR2Config:  # values: conf/decoar2.yaml
    params: str
    frontend: str
    frontend_args: dict
    cmvn: str
    norm_vars: bool
    num_heads: int
    layer: int  # None: the last transformer layer
    skip_tensors: list  # training-only tensors a checkpoint may hold besides the encoder


def subsample(feats):
    """Every second frame, starting with the first: (T, D) -> (ceil(T/2), D)."""
    return np.ascontiguousarray(feats[::SUBSAMPLE], dtype=np.float32)


def architecture(state, heads):
    """The encoder's config from the state dict's shapes (the original's values where absent)."""
    cfg = {**ARCHITECTURE, "encoder_attention_heads": heads, "input_feat": 80}
    proj = state.get("post_extract_proj.weight")
    if proj is not None and proj.dim() == 2:
        cfg["encoder_embed_dim"], cfg["input_feat"] = proj.shape
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")}
    if layers:
        cfg["encoder_layers"] = 1 + max(layers)
    fc1 = state.get("encoder.layers.0.fc1.weight")
    if fc1 is not None and fc1.dim() == 2:
        cfg["encoder_ffn_embed_dim"] = fc1.shape[0]
    conv = state.get("encoder.pos_conv.0.weight_v", state.get("encoder.pos_conv.0.parametrizations.weight.original1"))
    if conv is not None and conv.dim() == 3 and conv.shape[1]:
        cfg["conv_pos"], cfg["conv_pos_groups"] = conv.shape[2], cfg["encoder_embed_dim"] // conv.shape[1]
    return cfg


@register(SPEC)
class DeCoAR2(Featurizer):
    input = "fbank"
    sample_rate = 16000

    @classmethod
    def from_options(cls, params=None, config=None, feature_config=None, cmvn=None, norm_vars=None,
                     backend=None, layer=None, device=None, gpu=None, dtype="float32"):
        """params: checkpoint_decoar2.pt (default: conf/decoar2.yaml's); config: a decoar2.yaml;
        feature_config: Kaldi fbank options over the yaml's frontend_args; layer: see the module doc."""
        from speech_reps.models.decoar2_net import DeCoAR2Net
        from speech_reps.models.formats.fairseq import load_state_strict, read_checkpoint
        from speech_reps.models.formats.strict import uninitialised
        from speech_reps.models.torch_device import place, resolve_device

        cfg = load_config(DeCoAR2Config, config, "decoar2")
        if cfg.frontend != "fbank":
            raise ConfigError(f"decoar2: frontend must be fbank, not {cfg.frontend}")
        path = find_params(params, cfg.params, "DeCoAR 2.0", SPEC.how_to_get())
        state = read_checkpoint(path)["model"]
        arch = architecture(state, cfg.num_heads)
        if arch["encoder_embed_dim"] % cfg.num_heads:
            raise ConfigError(f"{path}: {arch['encoder_embed_dim']} units do not split into num_heads={cfg.num_heads}")
        net = uninitialised(lambda: DeCoAR2Net(arch))  # load_state_strict fills it
        load_state_strict(net, state, tuple(cfg.skip_tensors), path)
        options = FeatureOptions.from_file("fbank", feature_config, defaults=cfg.frontend_args,
                                           source="conf/decoar2.yaml frontend_args")
        if options.dim != arch["input_feat"]:
            raise ConfigError(f"{path}: the model takes {arch['input_feat']}-dim fbank, the front end "
                              f"gives {options.dim} (check --num-mel-bins / --use-energy)")
        layer = cfg.layer if layer is None else layer
        check_layers("decoar2", layer, arch["encoder_layers"])
        model = cls()
        device = resolve_device(device, gpu)
        model.frontend = FrontEndSpec(options, backend=choose_backend(backend, device), cmvn=cmvn or cfg.cmvn,
                                      norm_vars=cfg.norm_vars if norm_vars is None else norm_vars,
                                      device=str(device))
        model.sample_rate = options.sample_rate
        model.frame_shift = round(SUBSAMPLE * options.frame_shift_seconds, 6)
        model.dim = stacked_dim(arch["encoder_embed_dim"], layer)
        model.layers, model.layer = arch["encoder_layers"], layer
        model.device = device
        model.net, model.dtype = place(net, device, dtype)
        model.params_path = str(path.resolve())
        log.info("DeCoAR 2.0 from %s: %d layers x %d units, layer %s", path, model.layers, model.dim,
                 "last" if layer is None else layer)
        return model

    def describe(self):
        return {**super().describe(), "params": self.params_path, "layer": self.layer,
                "subsample": SUBSAMPLE, "device": str(self.device)}

    def num_frames(self, num_samples):
        return -(-self.frontend.options.num_frames(num_samples) // SUBSAMPLE)

    def featurize(self, batch):
        import torch

        from speech_reps.models.torch_device import padded_batch, per_utterance

        inputs = [subsample(x) for x in batch.inputs]
        lengths = [len(x) for x in inputs]
        with torch.inference_mode():
            out = self.net(padded_batch(inputs, self.device, self.dtype), torch.tensor(lengths), self.layer)
        return per_utterance(joined(out), lengths)
