"""Kaldi fbank and MFCC as models: the front end is the whole model (identity network)."""

from speech_reps.conf_dir import default_conf
from speech_reps.frontend import FeatureOptions, FrontEndSpec, choose_backend
from speech_reps.models.base import Featurizer
from speech_reps.models.declaration import ModelSpec
from speech_reps.models.registry import register

OPTIONS = ("feature_config", "cmvn", "norm_vars", "backend", "device", "gpu")


class KaldiFeatures(Featurizer):
    input = "fbank"
    device_inputs = True  # the GPU front end's features stay there: the engine copies them out
    kind = None  # "fbank" | "mfcc"

    def __init__(self, frontend: FrontEndSpec):
        self.frontend = frontend
        options = frontend.options
        self.dim = options.dim
        self.frame_shift = options.frame_shift_seconds
        self.sample_rate = options.sample_rate

    @classmethod
    def from_options(cls, feature_config=None, cmvn="none", norm_vars=False, backend=None,
                     device=None, gpu=None):
        """feature_config: Kaldi option file (default: the toolkit's conf/<kind>.conf);
        device/gpu: compute on that GPU with the torch backend (batched)."""
        path = feature_config if feature_config is not None else default_conf(f"{cls.kind}.conf")
        options = FeatureOptions.from_file(cls.kind, path)
        where = "cpu"
        if device is not None or gpu is not None:  # torch only when a device is asked for
            from speech_reps.models.torch_device import resolve_device

            where = str(resolve_device(device, gpu))
        return cls(FrontEndSpec(options, backend=choose_backend(backend, where), cmvn=cmvn,
                                norm_vars=norm_vars, device=where))

    def num_frames(self, num_samples):
        return self.frontend.options.num_frames(num_samples)

    def featurize(self, batch):
        return list(batch.inputs)


@register(ModelSpec(
    name="fbank", summary="Kaldi filterbank (`compute-fbank-feats`)",
    dim="`--num-mel-bins` (80 in `conf/fbank.conf`) (+1 with `--use-energy`)", frame_shift="10 ms",
    input_rate=16000, input="any rate set in the conf (16 kHz default)", options=OPTIONS, has_conf=False))
class Fbank(KaldiFeatures):
    """Kaldi filterbank energies (compute-fbank-feats)."""

    kind = "fbank"


@register(ModelSpec(
    name="mfcc", summary="Kaldi MFCC (`compute-mfcc-feats`)", dim="`--num-ceps` (13)", frame_shift="10 ms",
    input_rate=16000, input="as fbank", options=OPTIONS, has_conf=False))
class Mfcc(KaldiFeatures):
    """Kaldi MFCC (compute-mfcc-feats)."""

    kind = "mfcc"
