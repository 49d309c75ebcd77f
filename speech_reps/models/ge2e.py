"""GE2E d-vectors (Wan et al., ICASSP 2018) with resemblyzer's pretrained speaker encoder.

The weights are the ``pretrained.pt`` that the resemblyzer wheel on PyPI carries (Apache-2.0;
``pip install --no-deps resemblyzer``, which ``make venv`` does), so this model works offline.
resemblyzer is never imported: its front end is reproduced in ge2e_frontend.py, its network in
ge2e_net.py. Output frames are the partial-utterance embeddings (256-dim, unit length), one
per 0.77 s over 1.6 s windows; ``--pool mean`` gives resemblyzer's utterance embedding (the mean
of the partials, scaled back to unit length).

Audio preparation (``prepare_wave``, run in the engine's loader workers on each utterance before batching):
volume normalisation to -30 dBFS (raise only), then — only with ``trim_silence`` — resemblyzer's
webrtcvad silence trimming. Frame counts are those of the prepared wave: trimming is off by
default, so that frames keep their place in the recording and utt2num_frames follows from the
duration (see conf/ge2e.yaml).
"""

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models import ge2e_frontend as fe
from speech_reps.models.base import Featurizer
from speech_reps.models.config import default_weights, load_config
from speech_reps.models.declaration import ModelSpec, WeightFile
from speech_reps.models.registry import register

SPEC = ModelSpec(
    name="ge2e", summary="GE2E speaker encoder (resemblyzer's `pretrained.pt`, in the venv): partial-utterance "
                         "d-vectors; `--pool mean`: utterance d-vector",
    dim="256", frame_shift="770 ms (1.6 s windows)", input_rate=16000,
    input="16 kHz waveform, volume-normalised; `--trim-silence true`: webrtcvad trim",
    options=("params", "config", "trim_silence", "device", "gpu", "dtype"),
    # the digest is the one the wheel's RECORD publishes for resemblyzer/pretrained.pt
    weights=(WeightFile("pretrained.pt", "https://pypi.org/project/Resemblyzer/0.1.4/", in_wheel="resemblyzer==0.1.4",
                        sha256="39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"),),
    extras=("webrtcvad (--trim-silence true)",))

log = logging.getLogger(__name__)


def prepare_wave(wave, trim_silence=False):
    """resemblyzer's preprocess_wav on int16-scale audio; returns int16-scale float32 audio."""
    wave = fe.normalize_volume(np.asarray(wave, dtype=np.float32) / np.float32(32768.0))
    if trim_silence:
        wave = fe.trim_long_silences(wave)
        if len(wave) == 0:
            raise ValueError("the VAD (trim_silence) found no speech")
    return (wave * np.float32(32768.0)).astype(np.float32)


@dataclass
class GE2EConfig:  # values: conf/ge2e.yaml
    params: str  # empty: the pretrained.pt of the installed resemblyzer wheel
    rate: float  # partial utterances per second (resemblyzer's embed_utterance default)
    min_coverage: float  # keep a last, zero-padded partial only if audio fills this much of it
    trim_silence: bool  # resemblyzer's preprocess_wav VAD trim (needs webrtcvad)
    max_rows: int  # partial utterances per encoder call


@register(SPEC)
class GE2E(Featurizer):
    input = "waveform"
    sample_rate = fe.SAMPLE_RATE

    def __init__(self, weights, sizes, conf, device, dtype="float32", path=""):
        from speech_reps.models.formats.strict import load_into, uninitialised
        from speech_reps.models.ge2e_net import GE2EEncoder
        from speech_reps.models.torch_device import place

        self.n_mels, self.hidden, self.layers, self.dim = sizes
        if self.n_mels != fe.N_MELS:
            raise ConfigError(f"ge2e: the weights expect {self.n_mels} mel bins; the front end makes {fe.N_MELS}")
        self.step = fe.partial_step(conf.rate)
        self.frame_shift = self.step * fe.HOP / fe.SAMPLE_RATE
        self.rate, self.min_coverage, self.trim_silence = conf.rate, conf.min_coverage, conf.trim_silence
        self.max_rows = conf.max_rows
        self.filters = fe.mel_filters()
        self.device = device
        net = load_into(uninitialised(lambda: GE2EEncoder(*sizes)), weights, path, "not a GE2E encoder")
        self.net, self.dtype = place(net, device, dtype)

    @classmethod
    def from_options(cls, params=None, config=None, trim_silence=None, device=None, gpu=None, dtype="float32"):
        """params: a resemblyzer checkpoint (default: the installed wheel's pretrained.pt);
        config: a ge2e.yaml; trim_silence: resemblyzer's VAD trim; device/gpu: where the encoder runs."""
        from speech_reps.models.formats.resemblyzer import installed_weights
        from speech_reps.models.ge2e_weights import load_ge2e_weights
        from speech_reps.models.torch_device import resolve_device

        conf = load_config(GE2EConfig, config, "ge2e")
        if trim_silence is not None:
            conf.trim_silence = trim_silence
        if not 0 < conf.min_coverage <= 1 or conf.max_rows < 1:
            raise ConfigError(f"ge2e: min_coverage must be in (0, 1] and max_rows >= 1 "
                              f"(got {conf.min_coverage}, {conf.max_rows})")
        try:
            fe.partial_step(conf.rate)
        except ValueError as e:
            raise ConfigError(f"ge2e: {e}") from None
        if conf.trim_silence:
            try:
                import webrtcvad  # noqa: F401  (fail before any work, not on the first utterance)
            except ImportError:
                raise ConfigError("ge2e: trim_silence needs webrtcvad, the VAD resemblyzer uses: pip install "
                                  "webrtcvad (built with a C compiler) or webrtcvad-wheels") from None
        if params:
            path = Path(params)
        else:  # the config's file is under the artifacts location; none: the wheel's
            path = default_weights(conf.params) if conf.params else installed_weights(SPEC.weights[0].sha256)
        if path.is_dir():
            raise ConfigError(f"ge2e weights: {path} is a directory, not a file")
        if not path.is_file():
            raise ConfigError(f"ge2e weights not found: {path}; leave --params out to use the resemblyzer "
                              "wheel's pretrained.pt (pip install --no-deps resemblyzer==0.1.4)")
        weights, sizes = load_ge2e_weights(path)
        log.info("GE2E from %s: %d-layer LSTM %d, embedding %d, partial hop %.2f s, trim_silence %s",
                 path, sizes.layers, sizes.hidden, sizes.embedding, fe.partial_step(conf.rate) / 100, conf.trim_silence)
        model = cls(weights, sizes, conf, resolve_device(device, gpu), dtype, path)
        model.params_path = str(path.resolve())
        return model

    def describe(self):
        return {**super().describe(), "params": self.params_path, "hidden": self.hidden, "layers": self.layers,
                "rate": self.rate, "partial_frames": fe.PARTIAL_FRAMES, "partial_hop_frames": self.step,
                "min_coverage": self.min_coverage, "trim_silence": self.trim_silence, "device": str(self.device)}

    def wave_preparation(self):
        return functools.partial(prepare_wave, trim_silence=self.trim_silence)

    def num_frames(self, num_samples):
        return fe.num_partials(num_samples, self.step, self.min_coverage)

    def frame_spans(self, num_samples):
        """Partial i spans its 1.6 s window: mel frames [i * step, i * step + 160)."""
        starts = np.arange(self.num_frames(num_samples)) * self.step * fe.HOP
        return starts, starts + fe.PARTIAL_FRAMES * fe.HOP

    def partial_mels(self, wave):
        """(num_partials, 160, n_mels) mel power of one prepared int16-scale wave's partial windows."""
        count = self.num_frames(len(wave))
        mel = fe.mel_power(wave / np.float32(32768.0), self.step * (count - 1) + fe.PARTIAL_FRAMES, self.filters)
        return np.stack([mel[i * self.step:i * self.step + fe.PARTIAL_FRAMES] for i in range(count)])

    def featurize(self, batch):
        """Partial embeddings of prepared waves: all partials of the batch (equal length) run together."""
        import torch

        from speech_reps.models.torch_device import to_device

        partials = [self.partial_mels(np.asarray(w, dtype=np.float32)) for w in batch.inputs]
        rows = np.concatenate(partials)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for r in range(0, len(rows), self.max_rows):
                x = to_device(rows[r:r + self.max_rows], self.device, self.dtype)
                out[r:r + self.max_rows] = self.net(x).float().cpu().numpy()
        bounds = np.cumsum([0] + [len(p) for p in partials])
        return [np.ascontiguousarray(out[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def pool(self, feats, how):
        """``mean``: resemblyzer's utterance embedding, the mean partial scaled to unit length."""
        if how != "mean":
            return super().pool(feats, how)
        mean = feats.mean(axis=0, dtype=np.float64)
        return (mean / np.linalg.norm(mean)).astype(np.float32)
