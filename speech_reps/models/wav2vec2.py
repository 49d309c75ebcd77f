"""wav2vec 2.0 and HuBERT (fairseq checkpoints): one transformer layer's output, 20 ms frames.

``--layer N``: the output of transformer layer N (1-based); default: the model's output (the
last layer, plus the final LayerNorm of pre-LN "large" models), as fairseq's extract_features;
0: the CNN features after their LayerNorm and projection (the transformer's input).
The waveform is normalised per utterance when the checkpoint's task says ``normalize``.

Padding: fairseq trains group-norm models (``extractor_mode: default``, e.g. wav2vec_small)
on cropped, unpadded batches and layer-norm models (large, ``normalize: true``) with padding
masks; HuBERT derives its frame mask from the sample mask by reshaping. Here every kind gets
the exact per-utterance lengths of the conv formula: the group norm's statistics and the
attention see only valid frames, so a batch gives what each utterance gives alone.
"""

import logging
from dataclasses import dataclass

from speech_reps.models.config import load_config
from speech_reps.models.declaration import ModelSpec, WeightFile
from speech_reps.models.fairseq_featurizer import FairseqFeaturizer, find_params
from speech_reps.models.layers import check_layers, joined, stacked_dim
from speech_reps.models.registry import register
from speech_reps.models.wav2vec import conv_frames

log = logging.getLogger(__name__)

# fairseq's Wav2Vec2Config / HubertConfig defaults, for keys a checkpoint's config lacks
DEFAULTS = {
    "extractor_mode": "default", "encoder_layers": 12, "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12, "activation_fn": "gelu",
    "layer_norm_first": False, "conv_bias": False, "conv_pos": 128, "conv_pos_groups": 16,
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]",
    "layer_type": "transformer", "pos_conv_depth": 1, "conv_pos_batch_norm": False,
    "quantize_input": False, "crop_seq_to_multiple": 1,
}
UNSUPPORTED = [
    ("layer_type", "transformer", "conformer encoders are not ported"),
    ("pos_conv_depth", 1, "only the single positional convolution of wav2vec 2.0 is ported"),
    ("conv_pos_batch_norm", False, "positional batch norm is not ported"),
    ("quantize_input", False, "quantized-input models are not ported"),
    ("crop_seq_to_multiple", 1, "cropping would drop frames"),
]
TRAINING_ONLY = ("quantizer.", "project_q.", "final_proj.", "mask_emb", "target_glu.",
                 "label_embs_concat")
OPTIONS = ("params", "layer", "config", "device", "gpu", "dtype")
INPUT = "16 kHz waveform (normalised when the checkpoint says so)"


@dataclass
class Wav2Vec2Config:  # values: conf/wav2vec2.yaml, conf/hubert.yaml
    params: str
    layer: int  # None: the model output


class _TransformerSSL(FairseqFeaturizer):
    frame_shift = 0.02

    @classmethod
    def from_options(cls, params=None, layer=None, config=None, device=None, gpu=None, dtype="float32"):
        """params: a fairseq pretraining checkpoint; layer: see the module doc."""
        from speech_reps.models.wav2vec2_net import Wav2Vec2Net
        from speech_reps.models.wav2vec_net import receptive_field

        conf = load_config(Wav2Vec2Config, config, cls.name)
        path = find_params(params, conf.params, cls.spec)
        model, cfg, config = cls._build(path, Wav2Vec2Net, DEFAULTS, UNSUPPORTED, TRAINING_ONLY, device, gpu, dtype)
        layer = conf.layer if layer is None else layer
        check_layers(cls.name, layer, cfg["encoder_layers"])
        model.layer = layer
        model.conv_layers = model.net.feature_layers
        model.normalize = bool(config["task"].get("normalize", False))
        model.dim = stacked_dim(cfg["encoder_embed_dim"], layer)
        model.frame_shift = receptive_field(model.conv_layers)[1] / model.sample_rate
        log.info("%s from %s: %d layers, %d dims, layer %s, normalize %s", cls.name, path,
                 cfg["encoder_layers"], model.dim, "last" if layer is None else layer, model.normalize)
        return model

    def _forward(self, waves, lengths):
        out, lengths = self.net(waves, lengths, self.layer)
        return joined(out), lengths

    def num_frames(self, num_samples):
        return conv_frames(self.conv_layers, num_samples)

    def describe(self):
        return {**super().describe(), "layer": self.layer, "normalize": self.normalize}


@register(ModelSpec(
    name="wav2vec2", summary="wav2vec 2.0 layer (`--layer N`), fairseq checkpoint", dim="768 (base), 1024 (large)",
    frame_shift="20 ms", input_rate=16000, input=INPUT, options=OPTIONS,
    weights=(WeightFile("wav2vec_small.pt", "https://dl.fbaipublicfiles.com/fairseq/wav2vec/wav2vec_small.pt"),)))
class Wav2Vec2(_TransformerSSL):
    """wav2vec 2.0 (Baevski et al., 2020)."""


@register(ModelSpec(
    name="hubert", summary="HuBERT layer (`--layer N`), fairseq checkpoint", dim="768 (base), 1024 (large)",
    frame_shift="20 ms", input_rate=16000, input=INPUT, options=OPTIONS,
    weights=(WeightFile("hubert_base_ls960.pt", "https://dl.fbaipublicfiles.com/hubert/hubert_base_ls960.pt"),)))
class Hubert(_TransformerSSL):
    """HuBERT (Hsu et al., 2021): wav2vec 2.0's encoder, trained on cluster targets."""
