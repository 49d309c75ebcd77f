"""Several layers, one forward pass (``--layer 4,8,12``): one complete output per layer.

The model returns each utterance's asked-for layers side by side (models/layers.py); the
writer splits the columns into one FeatureWriter per layer, under <out-dir>/layer<N>/, as they
are produced, so memory is that of one batch. Each layer directory then gets what a ``--layer N``
run writes in <out-dir> (feats.ark/scp or xvector.scp, utt2num_frames, frame_shift, conf/ whose
featurize.yaml names layer N, data/), bit for bit the same features.

Resume: every layer's writer keeps its own journal. A run killed between two of them
checkpointing a batch leaves some a batch ahead; the resumed run redoes what not every layer
has, and a writer that already has an utterance keeps it (the redone output is identical, as
the batch plan is replayed).
"""

import copy
from contextlib import ExitStack
from pathlib import Path

from speech_reps.kaldi import FeatureWriter
from speech_reps.kaldi.host_staging import HostStaging


def sweep_layers(model_options):
    """The layers of a sweep (a tuple, from ``--layer 4,8,12``), or None for one output."""
    layer = (model_options or {}).get("layer")
    return layer if isinstance(layer, tuple) else None


def layer_dir(out_dir, layer):
    return Path(out_dir) / f"layer{layer}"


def open_writer(out_dir, name, compress, fingerprint, layers, dim):
    """The FeatureWriter of <out_dir>/<name>.ark, or for a sweep a LayerSplitWriter over
    <out_dir>/layer<N>/<name>.ark (``dim``: all layers' columns)."""
    if not layers:
        return FeatureWriter(out_dir / f"{name}.ark", out_dir / f"{name}.scp", compress, fingerprint)
    writers = []
    for layer in layers:
        where = layer_dir(out_dir, layer)
        where.mkdir(parents=True, exist_ok=True)
        writers.append(FeatureWriter(where / f"{name}.ark", where / f"{name}.scp", compress, fingerprint))
    return LayerSplitWriter(writers, dim // len(layers))


def outputs(out_dir, writer, settings, layers):
    """(directory, writer, settings) of each output: the one, or each layer's, whose settings
    (conf/featurize.yaml) are those of a ``--layer N`` run."""
    if not layers:
        return [(out_dir, writer, settings)]
    result = []
    for layer, sub in zip(layers, writer.writers):
        one = copy.deepcopy(settings)
        one["model_options"]["layer"] = layer
        if "layer" in one["featurizer"]:
            one["featurizer"]["layer"] = layer
        one["featurizer"]["dim"] = writer.dim
        result.append((layer_dir(out_dir, layer), sub, one))
    return result


class LayerSplitWriter:
    """FeatureWriter's interface over one writer per layer: ``write`` gives writer i the
    columns [i * dim, (i + 1) * dim) of each (T, layers * dim) matrix (or pooled vector)."""

    def __init__(self, writers, dim):
        self.writers, self.dim = writers, dim
        self._staging = HostStaging()  # a GPU's float32 matrices to the host, once for all layers

    def prepare(self, ops):
        """As FeatureWriter.prepare: a GPU's float32 matrices start their copies to the host."""
        if not self.writers[0].compress:
            self._staging.begin_writes(ops)

    @property
    def resumed(self):
        return any(w.resumed for w in self.writers)

    @property
    def processed(self):
        """Utterances every layer has (written or failed); the others are done again."""
        return set.intersection(*(w.processed for w in self.writers))

    @property
    def planned_frames(self):
        done = self.processed
        return {k: v for k, v in self.writers[0].planned_frames.items() if k in done}

    @property
    def failures(self):
        done = self.processed
        return {k: v for k, v in self.writers[0].failures.items() if k in done}

    @property
    def seconds(self):
        done = self.processed
        return {k: v for k, v in self.writers[0].seconds.items() if k in done}

    def write(self, key, feats, planned_frames=None, seconds=0.0):
        if not self.writers[0].compress:  # a GPU's matrix: to the host once, not once per layer
            feats = self._staging.host(feats)
        for i, writer in enumerate(self.writers):
            if key not in writer.num_frames:  # a writer ahead of the others keeps what it has
                writer.write(key, feats[..., i * self.dim:(i + 1) * self.dim], planned_frames, seconds)

    def fail(self, key, reason):
        for writer in self.writers:
            if key not in writer.failures:
                writer.fail(key, reason)

    def checkpoint(self):
        for writer in self.writers:
            writer.checkpoint()

    def __enter__(self):
        self._stack = ExitStack()
        for writer in self.writers:
            self._stack.enter_context(writer)
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)
