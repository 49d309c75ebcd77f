"""wav2vec 1.0 (fairseq ``wav2vec_large.pt``): ``c`` (aggregator, default) or ``z`` (encoder).

The model is rebuilt from the checkpoint's own config (conv layers, aggregator layers, log
compression, skip connections, residual scale, group-norm kind, activation), so any wav2vec 1.0
size loads. Input: 16 kHz waveform scaled to [-1, 1].

Frame alignment with Kaldi (``kaldi_aligned_frames``): frame i of wav2vec and of Kaldi's fbank
both start at sample 160·i. wav2vec's receptive field (465 samples for wav2vec_large) is longer
than Kaldi's 400-sample window, so it yields one frame fewer when (N − 400) mod 160 < 65; the
last frame is then repeated, and feats.scp has exactly Kaldi's 1 + ⌊(N − 400)/160⌋ frames.
"""

import logging
from dataclasses import dataclass

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models.config import load_config
from speech_reps.models.declaration import ModelSpec, WeightFile
from speech_reps.models.fairseq_featurizer import FairseqFeaturizer, find_params
from speech_reps.models.registry import register

log = logging.getLogger(__name__)

SPEC = ModelSpec(
    name="wav2vec", summary="wav2vec 1.0 (`c` or `z`), fairseq checkpoint", dim="512",
    frame_shift="10 ms, Kaldi's frame count", input_rate=16000, input="16 kHz waveform",
    options=("params", "output", "config", "device", "gpu", "dtype"), option_notes={"output": "c (default) or z"},
    weights=(WeightFile("wav2vec_large.pt", "https://dl.fbaipublicfiles.com/fairseq/wav2vec/wav2vec_large.pt"),))
KALDI_WINDOW, KALDI_SHIFT = 400, 160  # 25 ms / 10 ms at 16 kHz

# fairseq's Wav2VecConfig defaults, for keys that old checkpoints' args lack
DEFAULTS = {
    "conv_feature_layers": "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), "
                           "(512, 1, 1), (512, 1, 1), (512, 1, 1)]",
    "conv_aggregator_layers": "[(512, 2, 1), (512, 3, 1), (512, 4, 1), (512, 5, 1), (512, 6, 1), "
                              "(512, 7, 1), (512, 8, 1), (512, 9, 1), (512, 10, 1), (512, 11, 1), "
                              "(512, 12, 1), (512, 13, 1)]",
    "aggregator": "cnn", "no_conv_bias": False, "agg_zero_pad": False, "skip_connections_feat": False,
    "skip_connections_agg": True, "residual_scale": 0.5, "log_compression": True,
    "non_affine_group_norm": False, "activation": "relu", "vq_type": "none", "project_features": "none",
}
UNSUPPORTED = [("vq_type", "none", "vq-wav2vec quantizes the features; only wav2vec 1.0 is supported"),
               ("aggregator", "cnn", "only the convolutional aggregator is supported")]
TRAINING_ONLY = ("wav2vec_predictions.", "project_features.")


def conv_frames(layers, num_samples):
    n = num_samples
    for _, k, stride in layers:
        n = max(0, (n - k) // stride + 1)
    return n


def kaldi_aligned_frames(model_frames, num_samples):
    """Kaldi's frame count when wav2vec has one frame or more, else 0 (see the module doc)."""
    if model_frames == 0:
        return 0
    return max(model_frames, 1 + (num_samples - KALDI_WINDOW) // KALDI_SHIFT)


@dataclass
class Wav2VecConfig:  # values: conf/wav2vec.yaml
    params: str
    output: str


@register(SPEC)
class Wav2Vec(FairseqFeaturizer):
    frame_shift = 0.01

    @classmethod
    def from_options(cls, params=None, output=None, config=None, device=None, gpu=None, dtype="float32"):
        """params: fairseq wav2vec 1.0 checkpoint; output: c (default) or z."""
        from speech_reps.models.wav2vec_net import Wav2VecNet, eval_layers, receptive_field

        conf = load_config(Wav2VecConfig, config, "wav2vec")
        output = output or conf.output
        if output not in ("c", "z"):
            raise ConfigError(f"wav2vec: --output {output}: expected c or z")
        path = find_params(params, conf.params, SPEC)
        model, cfg, _ = cls._build(path, Wav2VecNet, DEFAULTS, UNSUPPORTED, TRAINING_ONLY, device, gpu, dtype)
        model.output = output
        model.layers = model.net.feature_layers
        hop = receptive_field(model.layers)[1]
        if hop != KALDI_SHIFT:
            raise ConfigError(f"{path}: encoder hop of {hop} samples; only 160 (10 ms) is supported")
        # fairseq subsamples skip connections by the padded length ratio: not batchable exactly
        model.one_by_one = cfg["skip_connections_feat"] and any(s > 1 for _, _, s in model.layers)
        model.dim = (model.layers if output == "z" else eval_layers(cfg["conv_aggregator_layers"]))[-1][0]
        log.info("wav2vec from %s: output %s, %d dims", path, output, model.dim)
        return model

    def _forward(self, waves, lengths):
        out, out_lengths = self.net(waves, lengths, self.output)
        return out.transpose(1, 2), out_lengths

    def num_frames(self, num_samples):
        return kaldi_aligned_frames(conv_frames(self.layers, num_samples), num_samples)

    def align(self, feats, num_samples):
        missing = self.num_frames(num_samples) - len(feats)
        if missing > 0:  # the last frame repeated
            last = feats[-1:]
            if isinstance(feats, np.ndarray):
                return np.concatenate([feats, np.repeat(last, missing, axis=0)])
            import torch

            return torch.cat([feats, last.expand(missing, -1)])
        return feats

    def describe(self):
        return {**super().describe(), "output": self.output}
