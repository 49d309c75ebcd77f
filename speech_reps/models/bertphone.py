"""BERTphone (Ling et al., Odyssey 2020): 768-dim representations every 30 ms, from 8 kHz audio.

Reads the original MXNet/GluonNLP ``bertphone_fisher_02-87159543.params`` (numpy; MXNet is not
needed) and runs the 12-layer BERT encoder in PyTorch. Front end (conf/bertphone.yaml), as the
original featurizer intended (its MFCC conf kept only its last line, and its stacking ran on the
wrong array type): Kaldi MFCC at 8 kHz (40 ceps, 40 mel bins, low-freq 40, high-freq -200, no
energy, dither 0), per-utterance CMVN with variances, then 3 frames stacked (``stack_frames``)
into 120 dims at 30 ms. Utterances longer than the 512 learned positions (15.36 s) are run in
overlapping windows (``windows``). ``--layer N``: encoder cell N's output (default: the last).
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
    name="bertphone", summary="BERTphone layer (`--layer N`), MXNet/GluonNLP `.params`", dim="768",
    frame_shift="30 ms", input_rate=8000,
    input="**8 kHz** (16 kHz only with `--allow-resample true`); 40-dim MFCC, dither 0, + per-utterance CMVN, "
          "3 frames stacked",
    options=("params", "config", "feature_config", "cmvn", "norm_vars", "backend", "layer", "device", "gpu",
             "dtype"),
    # no SHA-256 is published; the name's 8 hex digits are checked as Gluon's SHA-1 prefix (download.py)
    weights=(WeightFile("bertphone_fisher_02-87159543.params", "https://github.com/awslabs/speech-representations/"
                        "releases/download/bertphone/bertphone_fisher_02-87159543.params"),))
STACK = 3  # MFCC frames per BERTphone frame


@dataclass
class BERTphoneConfig:  # values: conf/bertphone.yaml
    params: str
    frontend: str
    frontend_args: dict
    cmvn: str
    norm_vars: bool
    num_heads: int
    layer: int  # None: the last encoder cell
    window_hop: int  # stacked frames between window starts for long utterances
    skip_tensors: list  # name prefixes in the .params to leave out


def stack_frames(feats):
    """The original featurizer's stacking: ceil(T/3) rows of 3 concatenated frames.

    T mod 3 == 1: the first and the last frame are repeated once (edge padding at both ends);
    T mod 3 == 2: the first frame is repeated once; then row i is frames 3i, 3i+1, 3i+2 of the
    padded sequence. (T, D) -> (ceil(T/3), 3D).
    """
    pad = {0: (0, 0), 1: (1, 1), 2: (1, 0)}[len(feats) % STACK]
    if len(feats) and pad != (0, 0):
        feats = np.pad(feats, (pad, (0, 0)), mode="edge")
    return np.ascontiguousarray(feats.reshape(len(feats) // STACK, STACK * feats.shape[1]), dtype=np.float32)


def windows(num_frames, size, hop):
    """How an utterance of ``num_frames`` stacked frames is cut for an encoder with ``size``
    learned positions: [(start, end, keep_start, keep_end)], window k = frames [start, end),
    of which [keep_start, keep_end) go to the output.

    One window when num_frames <= size. Otherwise windows of exactly ``size`` frames start
    every ``hop`` frames, the last one moved back to end at the last frame; where two windows
    overlap, the output switches from one to the next in the middle of the overlap, so each
    frame keeps at least (size - hop) / 2 frames of context on the cut side (128 frames =
    3.84 s with 512/256).
    """
    if num_frames <= size:
        return [(0, num_frames, 0, num_frames)]
    starts = list(range(0, num_frames - size, hop)) + [num_frames - size]
    cuts = [0] + [(prev + size + start) // 2 for prev, start in zip(starts, starts[1:])] + [num_frames]
    return [(s, s + size, cuts[k], cuts[k + 1]) for k, s in enumerate(starts)]


@register(SPEC)
class BERTphone(Featurizer):
    input = "fbank"  # a front-end feature matrix (here MFCC), computed by the pipeline
    sample_rate = 8000

    def __init__(self, weights, sizes, heads, frontend, device, hop, dtype="float32", path=""):
        from speech_reps.models.bertphone_net import BERTphoneNet
        from speech_reps.models.formats.strict import load_into, uninitialised
        from speech_reps.models.torch_device import place

        self.input_dim, self.dim, self.hidden = sizes.input_dim, sizes.units, sizes.hidden
        self.layers, self.max_length = sizes.layers, sizes.max_length
        net = load_into(uninitialised(lambda: BERTphoneNet(self.input_dim, self.dim, self.hidden, heads, self.layers,
                                                          self.max_length)),
                        weights, path, "not a BERTphone encoder")
        self.net, self.dtype = place(net, device, dtype)
        self.frontend, self.device, self.hop, self.layer = frontend, device, hop, None
        self.sample_rate = frontend.options.sample_rate
        self.frame_shift = round(STACK * frontend.options.frame_shift_seconds, 6)

    @classmethod
    def from_options(cls, params=None, config=None, feature_config=None, cmvn=None, norm_vars=None,
                     backend=None, layer=None, device=None, gpu=None, dtype="float32"):
        """params: the .params file (default: conf/bertphone.yaml's); config: a bertphone.yaml;
        feature_config: Kaldi MFCC options over the yaml's frontend_args; layer: encoder cell
        N's output (1..12; 0: the embedding after positions and LayerNorm)."""
        from speech_reps.models.bertphone_checkpoint import load_bertphone_weights
        from speech_reps.models.torch_device import resolve_device

        cfg = load_config(BERTphoneConfig, config, "bertphone")
        if cfg.frontend != "mfcc":
            raise ConfigError(f"bertphone: frontend must be mfcc, not {cfg.frontend}")
        path = find_params(params, cfg.params, "BERTphone", SPEC.how_to_get())
        weights, sizes = load_bertphone_weights(path, skip=tuple(cfg.skip_tensors))
        options = FeatureOptions.from_file("mfcc", feature_config, defaults=cfg.frontend_args,
                                           source="conf/bertphone.yaml frontend_args")
        if STACK * options.dim != sizes.input_dim:
            raise ConfigError(f"{path}: the model takes {sizes.input_dim}-dim input, but {STACK} stacked "
                              f"{options.dim}-dim MFCC frames give {STACK * options.dim} (check --num-ceps)")
        if sizes.units % cfg.num_heads:
            raise ConfigError(f"{path}: {sizes.units} units do not split into num_heads={cfg.num_heads}")
        if not 0 < cfg.window_hop <= sizes.max_length:
            raise ConfigError(f"bertphone: window_hop must be in 1..{sizes.max_length}, not {cfg.window_hop}")
        device = resolve_device(device, gpu)
        spec = FrontEndSpec(options, backend=choose_backend(backend, device), cmvn=cmvn or cfg.cmvn,
                            norm_vars=cfg.norm_vars if norm_vars is None else norm_vars, device=str(device))
        model = cls(weights, sizes, cfg.num_heads, spec, device, cfg.window_hop, dtype, path)
        layer = cfg.layer if layer is None else layer
        check_layers("bertphone", layer, model.layers)
        model.layer, model.params_path = layer, str(path.resolve())
        model.dim = stacked_dim(model.dim, layer)
        log.info("BERTphone from %s: %d-dim input, %d layers x %d units, layer %s", path, sizes.input_dim,
                 model.layers, model.dim, "last" if layer is None else layer)
        return model

    def describe(self):
        return {**super().describe(), "params": self.params_path, "layer": self.layer, "stack": STACK,
                "max_length": self.max_length, "window_hop": self.hop, "device": str(self.device)}

    def num_frames(self, num_samples):
        return -(-self.frontend.options.num_frames(num_samples) // STACK)

    def featurize(self, batch):
        import torch

        from speech_reps.models.torch_device import to_device

        stacked = [stack_frames(x) for x in batch.inputs]
        pieces = [(i, w) for i, x in enumerate(stacked) for w in windows(len(x), self.max_length, self.hop)]
        lengths = [w[1] - w[0] for _, w in pieces]
        padded = np.zeros((len(pieces), max(lengths), self.input_dim), dtype=np.float32)
        for row, (i, (start, end, _, _)) in enumerate(pieces):
            padded[row, :end - start] = stacked[i][start:end]
        with torch.inference_mode():
            out = self.net(to_device(padded, self.device, self.dtype), torch.tensor(lengths), self.layer)
            out = joined(out).float().cpu().numpy()
        outputs = [np.zeros((len(x), self.dim), dtype=np.float32) for x in stacked]
        for row, (i, (start, _, keep_start, keep_end)) in enumerate(pieces):
            outputs[i][keep_start:keep_end] = out[row, keep_start - start:keep_end - start]
        return outputs
