"""What the fairseq models (wav2vec, wav2vec 2.0, HuBERT) share: weights lookup, device, and
batched inference on raw waveforms scaled to [-1, 1]."""

import logging
from pathlib import Path

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models import config
from speech_reps.models.base import Featurizer
from speech_reps.models.formats.fairseq import build_net, load_fairseq_checkpoint, load_state_strict, model_config
from speech_reps.models.torch_device import per_utterance, place, resolve_device, to_device

log = logging.getLogger(__name__)
INT16_SCALE = 32768.0


def find_params(params, default, spec):
    return config.find_params(params, default, spec.name, spec.how_to_get())


class FairseqFeaturizer(Featurizer):
    """Subclasses set ``net`` (a torch module), ``device``, ``normalize`` and define
    ``_forward(waves (B, N) tensor, lengths (B,) tensor) -> (outputs (B, T, D), lengths)``."""

    input = "waveform"
    sample_rate = 16000
    normalize = False  # the task's "normalize": zero mean, unit variance per utterance
    one_by_one = False  # set when a config cannot be batched exactly

    @classmethod
    def _build(cls, path, net_class, defaults, unsupported, training_only, device=None, gpu=None,
               dtype="float32"):
        """A model of this class around ``net_class``, rebuilt from the fairseq checkpoint
        ``path``'s own config and loaded strictly, on its device; returns (model, the model
        section of the config with fairseq's defaults, the whole config)."""
        config, state = load_fairseq_checkpoint(path)
        if "w2v_args" in config["model"] or "w2v_path" in config["model"]:
            raise ConfigError(f"{path}: a fine-tuned (CTC) checkpoint; use the pretrained one")
        cfg = model_config(config, defaults, path, unsupported)
        net = build_net(net_class, cfg, path)
        load_state_strict(net, state, training_only, path)
        model = cls()
        model.params_path = str(Path(path).resolve())
        model.device = resolve_device(device, gpu)
        model.net, model.dtype = place(net, model.device, dtype)
        return model, cfg, config

    def featurize(self, batch):
        if self.one_by_one and len(batch.keys) > 1:
            return [self._run([wave])[0] for wave in batch.inputs]
        return self._run(batch.inputs)

    def _run(self, waves):
        import torch

        lengths = [len(w) for w in waves]
        padded = np.zeros((len(waves), max(lengths)), dtype=np.float32)
        for i, w in enumerate(waves):
            x = np.asarray(w, dtype=np.float32) / INT16_SCALE
            if self.normalize:  # fairseq: F.layer_norm(wav, wav.shape), eps 1e-5
                x64 = x.astype(np.float64)
                x = ((x64 - x64.mean()) / np.sqrt(x64.var() + 1e-5)).astype(np.float32)
            padded[i, :len(x)] = x
        with torch.inference_mode():
            out, out_lengths = self._forward(to_device(padded, self.device, self.dtype), torch.tensor(lengths))
        outputs = per_utterance(out, [int(n) for n in out_lengths])
        return [self.align(x, n) for x, n in zip(outputs, lengths)]

    def align(self, feats, num_samples):
        """Hook for frame-count alignment rules (``feats``: a numpy array, or a tensor on the
        model's GPU); by default the model's frames as they are."""
        return feats

    def describe(self):
        return {**super().describe(), "params": self.params_path, "device": str(self.device)}
