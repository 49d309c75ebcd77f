"""TRILL, TRILL-distilled and FRILL (TF-Hub SavedModels): non-semantic speech embeddings.

TensorFlow is an optional extra; it is imported only when one of these models is built.
Framing (as TRILL's TF-Hub module computes it): log-mel at 25 ms / 10 ms over max(N, 16000) samples (shorter clips are
zero-padded by the model), output frames are windows of 96 mel frames with a hop of 17, so
frame i covers samples [2720·i, 2720·i + 15600) and frame_shift is 0.17 s.

Long utterances are cut into chunks of ``chunk_frames`` output frames, starting at multiples of
2720 samples and overlapping by 15600 − 2720 = 12880 samples: the stitched frames are those of
one whole-clip call. Chunks of equal length (from any utterances) go to the model together.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models.base import Featurizer
from speech_reps.models.config import default_weights, load_config
from speech_reps.models.declaration import ModelSpec
from speech_reps.models.registry import register

log = logging.getLogger(__name__)

HOP, WINDOW, MIN_SAMPLES = 2720, 15600, 16000
INSTALL_HINT = ("pip install 'speech-reps[trill]' (TensorFlow, tensorflow-hub, tf-keras, setuptools<81); "
                "on CPU-only hosts: pip install tensorflow-cpu 'setuptools<81' && "
                "pip install --no-deps tensorflow-hub tf-keras")
HANDLES = {"trill": "https://tfhub.dev/google/nonsemantic-speech-benchmark/trill/3",
           "trill-distilled": "https://tfhub.dev/google/nonsemantic-speech-benchmark/trill-distilled/3",
           "frill": "https://tfhub.dev/google/nonsemantic-speech-benchmark/frill/1"}


def trill_frames(num_samples):
    """Output frames of a whole-clip call on ``num_samples`` samples."""
    mel_frames = 1 + (max(num_samples, MIN_SAMPLES) - 400) // 160
    return max(0, 1 + (mel_frames - 96) // 17)


def chunk_plan(num_samples, chunk_frames):
    """[(start sample, length, first frame to keep)] covering every frame exactly once.

    Every chunk but the last is ``HOP·(chunk_frames−1) + WINDOW`` samples long; the last one
    starts early enough to hold at least 16000 samples, so the model never pads it.
    """
    total = trill_frames(num_samples)
    chunk_len = HOP * (chunk_frames - 1) + WINDOW
    if num_samples <= chunk_len:
        return [(0, num_samples, 0)]
    plan, frame = [], 0
    while frame + chunk_frames <= total and HOP * frame + chunk_len <= num_samples:
        plan.append((HOP * frame, chunk_len, 0))
        frame += chunk_frames
    if frame < total:
        start_frame = min(frame, (num_samples - MIN_SAMPLES) // HOP)
        plan.append((HOP * start_frame, num_samples - HOP * start_frame, frame - start_frame))
    return plan


@dataclass
class TrillConfig:  # values: conf/trill.yaml, conf/trill-distilled.yaml, conf/frill.yaml
    params: str  # a local SavedModel directory or a TF-Hub URL
    output: str
    chunk_frames: int  # output frames per chunk of long audio
    max_rows: int  # chunks per model call


def _spec(name, summary, dim, notes=None):
    return ModelSpec(name=name, summary=summary, dim=dim, frame_shift="170 ms", input_rate=16000,
                     input="16 kHz waveform, clips under 1 s zero-padded" if name == "trill" else "16 kHz waveform",
                     options=("params", "output", "config", "device", "gpu"), option_notes=notes or {},
                     weights_from=f"a SavedModel directory, or the TF-Hub handle {HANDLES[name]} (cached by "
                                  "tensorflow_hub)",
                     extras=("tensorflow",))


class _TFHubModel(Featurizer):
    input = "waveform"
    sample_rate = 16000
    frame_shift = 0.17
    outputs = ("embedding",)
    rank2 = True  # the SavedModel takes [B, N]; FRILL takes one [1, N] clip

    @classmethod
    def from_options(cls, params=None, output=None, config=None, device=None, gpu=None):
        """params: SavedModel dir or TF-Hub URL; output: layer19 | embedding (TRILL)."""
        conf = load_config(TrillConfig, config, cls.name)
        output = output or conf.output
        if output not in cls.outputs:
            raise ConfigError(f"{cls.name}: --output {output}: expected one of {', '.join(cls.outputs)}")
        if conf.chunk_frames < 2:
            raise ConfigError(f"{cls.name}: chunk_frames must be at least 2")
        tf, hub = _import_tensorflow(cls.name)
        if params is not None or "://" in conf.params:
            handle = str(params if params is not None else conf.params)
        else:  # the config's SavedModel directory: under the artifacts location
            handle = str(default_weights(conf.params))
        if "://" not in handle and not Path(handle).is_dir():
            raise ConfigError(f"{cls.name} model not found: {handle}. Pass --params <SavedModel dir> "
                              f"or the TF-Hub handle {HANDLES[cls.name]} (downloaded and cached by tensorflow_hub)")
        model = cls()
        model.tf, model.output, model.handle = tf, output, handle
        model.chunk_frames, model.max_rows = conf.chunk_frames, conf.max_rows
        model.device = _tf_device(tf, device, gpu)
        try:
            with tf.device(model.device):
                model.module = hub.load(handle)
            probe = model._call(np.zeros((1, MIN_SAMPLES), np.float32))
        except ConfigError:
            raise
        except Exception as e:  # TF raises many types for a wrong or broken SavedModel
            raise ConfigError(f"{cls.name}: cannot use {handle} as a {cls.name} model: "
                              f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
        model.dim = probe.shape[-1]
        log.info("%s from %s: output %s, %d dims, device %s", cls.name, handle, output, model.dim, model.device)
        return model

    def _call(self, rows):
        """The model on equal-length rows (R, N) float32 in [-1, 1]; returns (R, T, D)."""
        with self.tf.device(self.device):
            if self.rank2:
                out = self.module(samples=rows, sample_rate=16000)
            else:
                out = [self.module(row[None]) for row in rows]
        if self.output not in (out if self.rank2 else out[0]):
            have = ", ".join(sorted(out if self.rank2 else out[0]))
            raise ConfigError(f"{self.name}: the model has no '{self.output}' output (it has {have})")
        if self.rank2:
            return np.asarray(out[self.output], dtype=np.float32)
        return np.concatenate([np.asarray(o[self.output], dtype=np.float32) for o in out])

    def num_frames(self, num_samples):
        return trill_frames(num_samples)

    def frame_spans(self, num_samples):
        """Frame i spans its window, samples [2720 i, 2720 i + 15600) (see the module doc)."""
        starts = np.arange(self.num_frames(num_samples)) * HOP
        return starts, starts + WINDOW

    def featurize(self, batch):
        pieces = defaultdict(list)  # chunk length -> [(utterance index, start, first kept frame)]
        for i, wave in enumerate(batch.inputs):
            for start, length, keep in chunk_plan(len(wave), self.chunk_frames):
                pieces[length].append((i, start, keep))
        frames = [[] for _ in batch.inputs]
        for length, items in pieces.items():
            for r in range(0, len(items), self.max_rows):
                group = items[r:r + self.max_rows]
                rows = np.stack([batch.inputs[i][s:s + length] for i, s, _ in group]) / np.float32(32768.0)
                out = self._call(rows.astype(np.float32))
                for (i, start, keep), o in zip(group, out):
                    frames[i].append((start // HOP + keep, o[keep:]))
        return [np.ascontiguousarray(np.concatenate([o for _, o in sorted(f, key=lambda x: x[0])]))
                for f in frames]

    def describe(self):
        return {**super().describe(), "params": self.handle, "output": self.output,
                "chunk_frames": self.chunk_frames, "device": self.device}


def _import_tensorflow(name):
    try:
        import tensorflow as tf
        import tensorflow_hub as hub
    except ImportError as e:
        raise ConfigError(f"--model {name} needs TensorFlow, which is not installed ({e.name}): "
                          f"{INSTALL_HINT}") from None
    return tf, hub


def _tf_device(tf, device=None, gpu=None):
    """'/GPU:N' or '/CPU:0'; GPUs get memory growth so TF does not take all their memory."""
    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:  # already initialised: growth was set by an earlier model
            pass
    if device is not None and device.startswith("cuda"):
        gpu = int(device.split(":")[1]) if ":" in device else 0
    elif device is not None and device != "cpu":
        raise ConfigError(f"--device {device}: expected cpu or cuda[:N]")
    if gpu is None or gpu < 0:
        return "/CPU:0"
    if gpu >= len(gpus):
        raise ConfigError(f"--gpu {gpu}: TensorFlow sees {len(gpus)} GPU(s)")
    return f"/GPU:{gpu}"


@register(_spec("trill", "TRILL `layer19` (default) / `embedding`, TF-Hub SavedModel", "12288 / 512",
               {"output": "layer19 (default) or embedding"}))
class Trill(_TFHubModel):
    """TRILL (Shor et al., 2020): layer19 (12288) or embedding (512), 0.17 s frames."""

    outputs = ("layer19", "embedding")


@register(_spec("trill-distilled", "TRILL-distilled `embedding`", "2048"))
class TrillDistilled(_TFHubModel):
    """TRILL-distilled: the same call, embedding (2048)."""


@register(_spec("frill", "FRILL `embedding`", "2048"))
class Frill(_TFHubModel):
    """FRILL: one [1, N] argument, embedding (2048)."""

    rank2 = False
