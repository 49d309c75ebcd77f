"""The one data path: data dir -> audio -> front end -> model -> ark/scp + output data dir.

Writes, under ``out_dir``: feats.ark, feats.scp (absolute paths), utt2num_frames, frame_shift,
and data/ (the input data dir pointing at the new features, with conf/ recording the options).
A bad utterance is logged with its id, source and cause, and the others are still written.
"""

import hashlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from speech_reps import __version__
from speech_reps.errors import AudioError, ConfigError
from speech_reps.frontend import CmvnStats, FrontEnd
from speech_reps.frontend.options import PROGRAMS
from speech_reps.kaldi import AudioLoader, DataDir, FeatureWriter, Utterance, write_output_data_dir
from speech_reps.kaldi import xvectors
from speech_reps.kaldi.writer import write_scp_like
from speech_reps.kaldi.xvectors import POOLS
from speech_reps.models.base import Batch
from speech_reps.models.registry import create

log = logging.getLogger(__name__)

DEFAULT_BATCH_FRAMES = 20000  # output frames per model call (200 s of audio at 10 ms)


@dataclass
class Summary:
    done: int
    failed: int
    seconds_of_audio: float

    @property
    def failed_fraction(self):
        return self.failed / max(1, self.done + self.failed)

    def line(self):
        return (f"done {self.done} utterances ({self.seconds_of_audio / 3600:.3f} h of audio), "
                f"failed {self.failed}")


class _Inputs:
    """Turns utterances into model inputs (audio, then front end and CMVN when the model wants)."""

    def __init__(self, featurizer, data_dir, allow_resample, channel):
        self.featurizer = featurizer
        self.frontend = FrontEnd(featurizer.frontend) if featurizer.input == "fbank" else None
        opts = featurizer.frontend.options if self.frontend else None
        if channel is None and opts is not None and opts["channel"] != -1:
            channel = opts["channel"]
        self.min_duration = opts["min-duration"] if opts is not None else 0.0
        self.audio = AudioLoader(
            featurizer.sample_rate, allow_resample=allow_resample, channel=channel,
            allow_downsample=bool(opts and opts["allow-downsample"]),
            allow_upsample=bool(opts and opts["allow-upsample"]),
        )
        self.spk_stats = None
        if self.frontend and featurizer.frontend.cmvn == "spk":
            if data_dir is None or not data_dir.utt2spk:
                where = f"{data_dir.path}/utt2spk is missing" if data_dir else "needs a data dir with utt2spk"
                raise ConfigError(f"--cmvn spk: {where}")
            self.spk_stats = {}

    def wave(self, utt):
        wave = self.audio.load(utt)
        if len(wave) == 0:
            raise AudioError(utt.utt, utt.source, "empty audio")
        if not np.isfinite(wave).all():
            raise AudioError(utt.utt, utt.source, "audio contains NaN or Inf")
        if len(wave) < self.min_duration * self.featurizer.sample_rate:
            raise AudioError(utt.utt, utt.source, f"shorter than --min-duration={self.min_duration:g}s")
        try:
            wave = self.featurizer.prepare_wave(wave)
        except ValueError as e:
            raise AudioError(utt.utt, utt.source, str(e)) from None
        if self.featurizer.num_frames(len(wave)) == 0:
            raise AudioError(utt.utt, utt.source, f"shorter than the model's receptive field ({len(wave)} samples give no frame)")
        return wave

    def raw_features(self, utt, wave):
        try:
            return self.frontend.features(utt.utt, wave)
        except (RuntimeError, ValueError) as e:
            raise AudioError(utt.utt, utt.source, f"front end failed: {e}") from None

    def accumulate_speaker_stats(self, utterances, on_error):
        """Pass 1 of --cmvn spk: Kaldi stats over all of each speaker's utterances."""
        for utt in utterances:
            try:
                feats = self.raw_features(utt, self.wave(utt))
            except AudioError as e:
                on_error(e)
                continue
            self.spk_stats.setdefault(utt.spk, CmvnStats(feats.shape[1])).accumulate(feats)

    def model_input(self, utt):
        """(model input, number of samples) of one utterance."""
        wave = self.wave(utt)
        if self.frontend is None:
            return wave, len(wave)
        feats = self.raw_features(utt, wave)
        stats = self.spk_stats[utt.spk] if self.spk_stats is not None else None
        return self.frontend.normalise(utt.utt, feats, stats), len(wave)


def _conf_files(featurizer, settings):
    files = {"featurize.yaml": yaml.safe_dump(settings, sort_keys=False)}
    if featurizer.frontend is not None:
        opts = featurizer.frontend.options
        header = f"{PROGRAMS[opts.kind]} options used by speech-reps {__version__}"
        files[f"{opts.kind}.conf"] = opts.to_conf_text(header)
    return files


def _batches(utterances, inputs, batch_frames, on_error, bar):
    """Batches of model inputs holding about ``batch_frames`` output frames each."""
    batch, frames = Batch([], [], []), 0
    for utt in utterances:
        try:
            model_input, n = inputs.model_input(utt)
        except AudioError as e:
            on_error(e)
            bar.update(1)
            continue
        batch.keys.append(utt.utt)
        batch.inputs.append(model_input)
        batch.num_samples.append(n)
        frames += inputs.featurizer.num_frames(n)
        if frames >= batch_frames:
            yield batch
            batch, frames = Batch([], [], []), 0
    if batch.keys:
        yield batch


def featurize_data_dir(data_dir, out_dir, model="fbank", model_options=None, compress=False,
                       allow_resample=False, channel=None, batch_frames=DEFAULT_BATCH_FRAMES,
                       progress=True, pool="none", name="feats", data_copy=True):
    """Featurize every utterance of ``data_dir`` into ``out_dir``; returns a Summary.

    name: the outputs' prefix (<name>.ark, <name>.scp; utt2num_frames becomes
    <name>.utt2num_frames unless name is "feats"); data_copy: also write <out_dir>/data/.
    pool="mean": one vector per utterance instead, written as Kaldi's extract_xvectors.sh does
    (xvector.scp, spk_xvector.scp, num_utts.ark) rather than feats.scp and a data dir.
    Failed utterances go to <out_dir>/failed ("<utt> <reason>"; <name>.failed for other names). A run killed part way resumes
    when the same call is made again (see kaldi/writer.py), to byte-identical output.
    """
    if pool not in POOLS:
        raise ConfigError(f"--pool {pool}: expected one of {', '.join(POOLS)}")
    data = DataDir.load(data_dir, lenient=True)
    for problem in data.audio_problems:
        log.error("%s", problem)
    featurizer = create(model, **(model_options or {}))
    inputs = _Inputs(featurizer, data, allow_resample, channel)
    out_dir = _writable_dir(out_dir)
    settings = {
        "speech_reps_version": __version__, "model": model, "data_dir": str(Path(data_dir).resolve()),
        "model_options": {k: str(v) if isinstance(v, Path) else v for k, v in (model_options or {}).items()},
        "compress": compress, "allow_resample": allow_resample, "channel": channel,
        "featurizer": featurizer.describe(),
    }
    run_id = hashlib.sha1(json.dumps([settings, batch_frames, pool, name, [u.__dict__ for u in data.utterances]],
                                     sort_keys=True, default=str).encode()).hexdigest()
    name = "xvector" if pool != "none" else name
    with FeatureWriter(out_dir / f"{name}.ark", out_dir / f"{name}.scp", compress, run_id) as writer:
        if writer.resumed:
            log.info("resuming: %d utterances were done by an earlier run", len(writer.processed))
        seconds = _run(featurizer, inputs, data, writer, batch_frames, pool, progress, model)
    failures = writer.failures
    write_scp_like(out_dir / ("failed" if name == "feats" else f"{name}.failed"),
                   sorted(failures.items(), key=lambda x: x[0].encode()))
    entries = writer.scp_entries()
    summary = Summary(len(entries), len(failures), seconds)
    if pool != "none":
        if data.utt2spk:
            xvectors.write_speaker_means(out_dir, entries, data.utt2spk)
        return summary
    write_scp_like(out_dir / ("utt2num_frames" if name == "feats" else f"{name}.utt2num_frames"),
                   ((k, writer.num_frames[k]) for k, _ in entries))
    (out_dir / "frame_shift").write_text(f"{featurizer.frame_shift:g}\n")
    conf_files = _conf_files(featurizer, settings)
    (out_dir / "conf").mkdir(exist_ok=True)
    for conf_name, text in conf_files.items():  # also for featurize.sh, which copies them on
        (out_dir / "conf" / conf_name).write_text(text, encoding="utf-8")
    if data_copy:
        write_output_data_dir(data.path, out_dir / "data", entries, writer.num_frames,
                              featurizer.frame_shift, conf_files, data.utt2spk)
    return summary


def _writable_dir(out_dir):
    """``out_dir``, created; an unwritable one is an error before any work."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write to {out_dir}: {e.strerror}") from None
    return out_dir


def _run(featurizer, inputs, data, writer, batch_frames, pool, progress, model):
    """The batches through the model into ``writer``; returns the seconds of audio written."""
    def on_error(e):
        log.error("%s", e)
        if e.utt not in writer.failures:
            writer.fail(e.utt, e.cause)

    todo = data.utterances
    if inputs.spk_stats is not None:  # stats of every utterance, also those done before a resume
        inputs.accumulate_speaker_stats(todo, on_error)
    done = writer.processed
    todo = [u for u in todo if u.utt not in done]
    seconds, started = 0.0, time.time()
    bar = tqdm(total=len(data), initial=len(data) - len(todo), unit="utt", file=sys.stderr,
               disable=not progress, desc=f"{model}")
    for batch in _batches(todo, inputs, batch_frames, on_error, bar):
        outputs = featurizer.featurize(batch)
        featurizer.check_output(batch, outputs)
        for key, n, feats in zip(batch.keys, batch.num_samples, outputs):
            if not np.isfinite(feats).all():
                on_error(AudioError(key, "model output", "model output contains NaN or Inf"))
                continue
            writer.write(key, feats if pool == "none" else featurizer.pool(feats, pool))
            seconds += n / featurizer.sample_rate
        writer.checkpoint()
        bar.update(len(batch.keys))
        bar.set_postfix_str(f"{seconds / 3600:.3f} h audio, RTF {(time.time() - started) / max(seconds, 1e-9):.4f}")
    writer.checkpoint()  # failures after the last batch
    bar.close()
    return seconds


class FileFeaturizer:
    """One model, many single files: ``FileFeaturizer("decoar", {...})(path) -> (T, dim)``."""

    def __init__(self, model="fbank", model_options=None, allow_resample=False, channel=None):
        self.featurizer = create(model, **(model_options or {}))
        self._inputs = _Inputs(self.featurizer, None, allow_resample, channel)

    def __call__(self, path):
        """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
        utt = Utterance(Path(path).name, Path(path).name, str(path))
        model_input, n = self._inputs.model_input(utt)
        batch = Batch([utt.utt], [model_input], [n])
        outputs = self.featurizer.featurize(batch)
        self.featurizer.check_output(batch, outputs)
        return outputs[0]


def featurize_file(path, model="fbank", model_options=None, allow_resample=False, channel=None):
    """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
    return FileFeaturizer(model, model_options, allow_resample, channel)(path)
