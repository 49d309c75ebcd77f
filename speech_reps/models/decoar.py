"""DeCoAR (Ling et al., ICASSP 2020): 2048-dim contextual representations at 10 ms.

Reads the original MXNet ``decoar-encoder-29b8e2ac.params`` (40-dim fbank) or the PyTorch
``checkpoint_decoar.pt`` (80-dim fbank) and runs the encoder in PyTorch, batched. Front end:
Kaldi fbank with the checkpoint's bin count and ``dither 0``, then per-utterance CMVN with
variances (conf/decoar.yaml).
"""

import logging
from dataclasses import dataclass


from speech_reps.errors import ConfigError
from speech_reps.frontend import FeatureOptions, FrontEndSpec, choose_backend
from speech_reps.kaldi.options import read_option_file
from speech_reps.models.base import Featurizer
from speech_reps.models.config import find_params, load_config
from speech_reps.models.declaration import ModelSpec, WeightFile
from speech_reps.models.registry import register

log = logging.getLogger(__name__)

SPEC = ModelSpec(
    name="decoar", summary="DeCoAR (MXNet `.params` / PyTorch `.pt`)", dim="2048", frame_shift="10 ms",
    input_rate=16000,
    input="16 kHz; 40-dim (`.params`) or 80-dim (`.pt`) fbank, dither 0, + per-utterance CMVN with variances",
    options=("params", "config", "feature_config", "cmvn", "norm_vars", "backend", "device", "gpu", "dtype"),
    weights=(
        # Gluon's name carries the first 8 hex digits of the file's SHA-1 (checked); no SHA-256 is published
        WeightFile("decoar-encoder-29b8e2ac.params",
                   "https://apache-mxnet.s3-us-west-2.amazonaws.com/gluon/models/decoar-encoder-29b8e2ac.zip",
                   zip_member="decoar-encoder-29b8e2ac.params", note="MXNet, reported offline since 2022"),
        WeightFile("checkpoint_decoar.pt",
                   "https://github.com/awslabs/speech-representations/releases/download/decoar/checkpoint_decoar.pt",
                   download="decoar-pt", note="PyTorch"),
    ))


@dataclass
class DeCoARConfig:  # values: conf/decoar.yaml
    params: str
    frontend: str
    frontend_args: dict
    cmvn: str
    norm_vars: bool


@register(SPEC)
class DeCoAR(Featurizer):
    input = "fbank"
    device_inputs = True  # the GPU front end's features, padded on the GPU (padded_batch)
    frame_shift = 0.01
    sample_rate = 16000

    def __init__(self, weights, sizes, frontend, device, dtype="float32", path=""):
        from speech_reps.models.decoar_net import DeCoAREncoder
        from speech_reps.models.formats.strict import load_into, uninitialised
        from speech_reps.models.torch_device import place

        self.input_dim, self.hidden, self.layers = sizes.input_dim, sizes.hidden, sizes.layers
        self.dim = 2 * self.hidden
        self.frontend = frontend
        self.sample_rate = frontend.options.sample_rate
        self.device = device
        self.precision = dtype
        net = load_into(uninitialised(lambda: DeCoAREncoder(self.input_dim, self.hidden, self.layers)), weights, path,
                        "not a DeCoAR encoder")
        self.net, self.dtype = place(net, device, dtype)

    @classmethod
    def from_options(cls, params=None, config=None, feature_config=None, cmvn=None, norm_vars=None,
                     backend=None, device=None, gpu=None, dtype="float32"):
        """params: .params or .pt file (default: conf/decoar.yaml's); config: a decoar.yaml;
        feature_config: Kaldi options over the yaml's frontend_args (num-mel-bins comes from
        the weights); device/gpu: where the encoder runs."""
        from speech_reps.models.decoar_checkpoint import load_decoar_weights
        from speech_reps.models.torch_device import resolve_device

        cfg = load_config(DeCoARConfig, config, "decoar")
        if cfg.frontend != "fbank":
            raise ConfigError(f"decoar: frontend must be fbank, not {cfg.frontend}")
        path = find_params(params, cfg.params, "DeCoAR", SPEC.how_to_get())
        weights, sizes, fmt = load_decoar_weights(path)
        log.info("DeCoAR from %s (%s): %d-dim fbank, %d x %d LSTM layers", path, fmt, sizes.input_dim, sizes.layers,
                 sizes.hidden)
        user_bins = read_option_file(feature_config).get("num-mel-bins") if feature_config else None
        if user_bins is not None and user_bins.value != str(sizes.input_dim):
            raise ConfigError(f"{user_bins.source}: --num-mel-bins={user_bins.value}, but {path} "
                              f"expects {sizes.input_dim}-dim fbank")
        options = FeatureOptions.from_file("fbank", feature_config, defaults=cfg.frontend_args,
                                           overrides={"num-mel-bins": sizes.input_dim},
                                           source="conf/decoar.yaml frontend_args")
        device = resolve_device(device, gpu)
        spec = FrontEndSpec(options, backend=choose_backend(backend, device), cmvn=cmvn or cfg.cmvn,
                            norm_vars=cfg.norm_vars if norm_vars is None else norm_vars, device=str(device))
        model = cls(weights, sizes, spec, device, dtype, path)
        model.params_path, model.params_format = str(path.resolve()), fmt
        return model

    def describe(self):
        return {**super().describe(), "params": self.params_path, "params_format": self.params_format,
                "input_dim": self.input_dim, "hidden": self.hidden, "layers": self.layers,
                "device": str(self.device), "dtype": self.precision}

    def num_frames(self, num_samples):
        return self.frontend.options.num_frames(num_samples)

    def featurize(self, batch):
        import torch

        from speech_reps.models.torch_device import padded_batch, per_utterance

        lengths = [len(x) for x in batch.inputs]
        with torch.inference_mode():
            feats = padded_batch(batch.inputs, self.device, self.dtype)
            if self.device.type == "cpu" and self.dtype == torch.float32:
                out = torch.empty((len(lengths), max(lengths), self.dim))  # written in place
                self.net(feats, torch.tensor(lengths), out=out)
            else:
                out = self.net(feats, torch.tensor(lengths))
        return per_utterance(out, lengths)
