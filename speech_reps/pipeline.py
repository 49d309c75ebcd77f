"""The one data path: data dir -> audio -> front end -> model -> ark/scp + output data dir.

Writes, under ``out_dir``: feats.ark, feats.scp (absolute paths), utt2num_frames, frame_shift,
and data/ (the input data dir pointing at the new features, with conf/ recording the options).
A bad utterance is logged with its id, source and cause, and the others are still written.
"""

import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from speech_reps import __version__
from speech_reps.errors import AudioError, ConfigError
from speech_reps.batching import LengthBucketer, PaddingStats
from speech_reps.defaults import default_batch_frames, default_num_workers, featurizer_device
from speech_reps.frontend import CmvnStats, FrontEnd
from speech_reps.fingerprint import code_identity, fingerprint, inputs_identity, options_identity
from speech_reps.frontend.options import PROGRAMS
from speech_reps.inputs import InputSpec
from speech_reps.kaldi import DataDir, Utterance, write_output_data_dir
from speech_reps.kaldi import xvectors
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT
from speech_reps.kaldi.lock import lock_output_dir
from speech_reps.kaldi.vad import VoicedFrames, drop_stale_vad_scp
from speech_reps.kaldi.writer import write_scp_like
from speech_reps.kaldi.xvectors import POOLS
from speech_reps.layer_sweep import open_writer, outputs, sweep_layers
from speech_reps.models.base import Batch
from speech_reps.models.registry import create
from speech_reps.prefetch import read_ahead
from speech_reps.progress import Progress
from speech_reps.writer_thread import BackgroundWriter

log = logging.getLogger(__name__)

# featurize.py's --batch-frames and --num-workers default by model and device (None here):
# speech_reps/defaults.py. A library call without them keeps these, as it always has.
LIBRARY_BATCH_FRAMES, LIBRARY_NUM_WORKERS = 20000, 0
CHECKPOINT_SECONDS = 2.0  # a killed run redoes at most about this much work on resume


@dataclass
class Summary:
    done: int
    failed: int
    seconds_of_audio: float
    padding: PaddingStats = None
    fingerprint: str = None  # of everything the output depends on (see fingerprint.py)
    done_file: Path = None  # where mark_done() records a finished job
    reused: bool = False  # an earlier run finished this very job: nothing was recomputed

    @property
    def failed_fraction(self):
        return self.failed / max(1, self.done + self.failed)

    def line(self):
        return (f"done {self.done} utterances ({self.seconds_of_audio / 3600:.3f} h of audio), "
                f"failed {self.failed}")


def mark_done(summary):
    """Record that the job of ``summary`` finished (written last: ``reuse`` trusts it)."""
    record = {"fingerprint": summary.fingerprint, "done": summary.done, "failed": summary.failed,
              "seconds_of_audio": summary.seconds_of_audio}
    write_scp_like(summary.done_file, [("job", json.dumps(record, sort_keys=True))])


def _finished_before(done_file, fingerprint):
    """The Summary an earlier run recorded in ``done_file`` for this very fingerprint, or None."""
    try:
        record = json.loads(done_file.read_text(encoding="utf-8").partition(" ")[2])
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    return Summary(record["done"], record["failed"], record["seconds_of_audio"],
                   fingerprint=fingerprint, done_file=done_file, reused=True)


class _Inputs:
    """Model inputs of utterances: read (and front-end'ed) ahead in workers, CMVN'd here.

    A front end that computes whole batches (torch, on the model's GPU) runs here, per batch.
    """

    def __init__(self, featurizer, data_dir, allow_resample, channel, num_workers=0,
                 pipe_timeout=DEFAULT_PIPE_TIMEOUT):
        self.featurizer = featurizer
        self.spec = InputSpec.for_model(featurizer, allow_resample, channel, pipe_timeout)
        self.frontend = FrontEnd(featurizer.frontend) if featurizer.input == "fbank" else None
        self.batched = self.frontend is not None and self.frontend.batched
        self.num_workers = num_workers
        self.spk_stats = None
        if self.frontend and featurizer.frontend.cmvn == "spk":
            if data_dir is None or not data_dir.utt2spk:
                where = f"{data_dir.path}/utt2spk is missing" if data_dir else "needs a data dir with utt2spk"
                raise ConfigError(f"--cmvn spk: {where}")
            self.spk_stats = {}

    def _read(self, utterances, on_error):
        """(utt, wave or raw features, num_samples) of the readable ones, in order."""
        for item in read_ahead(utterances, self.spec, self.num_workers):
            if len(item) == 2:
                on_error(item[1])
            else:
                yield item

    def accumulate_speaker_stats(self, utterances, on_error):
        """Pass 1 of --cmvn spk: Kaldi stats over all of each speaker's utterances."""
        for utt, x, _ in self._read(utterances, on_error):
            feats = self.frontend.features(utt.utt, x) if self.batched else x
            self.spk_stats.setdefault(utt.spk, CmvnStats(feats.shape[1])).accumulate(feats)

    def stream(self, utterances, on_error):
        """(utt, input, num_samples) of each utterance that can be featurized, in order; the
        input is ready for the model unless the front end is batched (see ``model_inputs``)."""
        for utt, x, n in self._read(utterances, on_error):
            if self.frontend is None:  # the model's own audio preparation (ge2e: trimming)
                try:
                    x = self.featurizer.prepare_wave(x)
                except ValueError as e:
                    on_error(AudioError(utt.utt, utt.source, str(e)))
                    continue
                n = len(x)
            if self.featurizer.num_frames(n) == 0:
                on_error(AudioError(utt.utt, utt.source, f"shorter than the model's receptive field "
                                                         f"({n} samples give no frame)"))
                continue
            if self.frontend is not None and not self.batched:
                x = self._normalise(utt, x)
            yield utt, x, n

    def _normalise(self, utt, feats):
        stats = self.spk_stats[utt.spk] if self.spk_stats is not None else None
        return self.frontend.normalise(utt.utt, feats, stats)

    def model_inputs(self, utts, xs):
        if not self.batched:
            return xs
        if self.spk_stats is None:
            return self.frontend.features_batch([u.utt for u in utts], xs)
        raw = self.frontend.backend.compute_batch(xs)
        return [self._normalise(u, f) for u, f in zip(utts, raw)]


def _conf_files(featurizer, settings):
    files = {"featurize.yaml": yaml.safe_dump(settings, sort_keys=False)}
    if featurizer.frontend is not None:
        opts = featurizer.frontend.options
        header = f"{PROGRAMS[opts.kind]} options used by speech-reps {__version__}"
        files[f"{opts.kind}.conf"] = opts.to_conf_text(header)
    return files


def check_job(data_dir, out_dir, model="fbank", model_options=None, pool="none", allow_resample=False,
              channel=None, num_workers=LIBRARY_NUM_WORKERS, vad_scp=None, pipe_timeout=DEFAULT_PIPE_TIMEOUT):
    """What a job needs before its first utterance, checked: the data dir, the model (options,
    weights), the VAD table, a writable ``out_dir``. Returns (data dir, featurizer, inputs, VAD
    or None, out_dir); a SpeechRepsError names what is wrong (featurize.sh runs it once, on the
    console, before its jobs: featurize.py --check-only)."""
    if pool not in POOLS:
        raise ConfigError(f"--pool {pool}: expected one of {', '.join(POOLS)}")
    data = DataDir.load(data_dir, lenient=True)
    featurizer = create(model, **(model_options or {}))
    if num_workers is None:
        num_workers = default_num_workers(model, featurizer_device(featurizer))
    inputs = _Inputs(featurizer, data, allow_resample, channel, num_workers, pipe_timeout)
    vad = VoicedFrames(vad_scp, featurizer) if vad_scp else None
    return data, featurizer, inputs, vad, _writable_dir(out_dir)


def featurize_data_dir(data_dir, out_dir, model="fbank", model_options=None, compress=False,
                       allow_resample=False, channel=None, batch_frames=LIBRARY_BATCH_FRAMES,
                       progress=True, pool="none", name="feats", data_copy=True, num_workers=LIBRARY_NUM_WORKERS,
                       reuse=False, log_interval=30.0, vad_scp=None, pipe_timeout=DEFAULT_PIPE_TIMEOUT):
    """Featurize every utterance of ``data_dir`` into ``out_dir``; returns a Summary.

    name: the outputs' prefix (<name>.ark, <name>.scp; utt2num_frames becomes
    <name>.utt2num_frames unless name is "feats"); data_copy: also write <out_dir>/data/ (and,
    with pool, the speaker means).
    pool="mean": one vector per utterance instead, written as Kaldi's extract_xvectors.sh does
    (xvector.scp, spk_xvector.scp, num_utts.ark) rather than feats.scp and a data dir; pooled
    vectors are never compressed (extract_xvectors.sh writes them plain).
    Failed utterances go to <out_dir>/failed ("<utt> <reason>"; <name>.failed for other names).
    A run killed part way resumes when the same call is made again (see kaldi/writer.py), to
    byte-identical output; ``reuse``: a job that an earlier run finished (``mark_done``) with
    the same fingerprint -- inputs, option values, code -- is not redone.
    num_workers: processes reading audio and computing the CPU front end ahead of the model
    (0: in this process); the output does not depend on it. batch_frames, num_workers: None,
    the defaults of the model on its device (defaults.py).
    vad_scp: a Kaldi vad.scp (steps/compute_vad.py's): only voiced frames are written or pooled
    (see kaldi/vad.py for how 10 ms decisions map onto the model's frames).
    ``model_options["layer"]`` a tuple (--layer 4,8,12): one output per layer, from one pass,
    in <out_dir>/layer<N>/ (see layer_sweep.py). pipe_timeout: seconds a ``cmd |`` of wav.scp
    may take for one recording.
    """
    data, featurizer, inputs, vad, out_dir = check_job(data_dir, out_dir, model, model_options, pool,
                                                       allow_resample, channel, num_workers, vad_scp, pipe_timeout)
    if batch_frames is None:
        batch_frames = default_batch_frames(model, featurizer_device(featurizer), featurizer.frame_shift)
    for problem in data.audio_problems:
        log.error("%s", problem)
    if pool != "none":
        compress = False
        name = "xvector" if name == "feats" else name
    lock = lock_output_dir(out_dir, name)  # one run per output
    try:
        settings = {
            "speech_reps_version": __version__, "model": model, "data_dir": str(Path(data_dir).resolve()),
            "model_options": {k: str(v) if isinstance(v, Path) else v for k, v in (model_options or {}).items()},
            "compress": compress, "allow_resample": allow_resample, "channel": channel,
            "featurizer": featurizer.describe(),
        }
        if vad is not None:  # only then: runs without VAD keep their settings
            settings["vad_scp"] = str(vad.path.resolve())
        layers = sweep_layers(model_options)  # --layer 4,8,12: one output per layer, one pass
        option_files = options_identity({**(model_options or {}), **featurizer.describe(), "vad_scp": vad_scp})
        run_id = fingerprint(settings, option_files, _conf_files(featurizer, {}), code_identity(), batch_frames,
                             pool, name, inputs_identity(data.path, {u.rec: u.rxfile for u in data.utterances}),
                             [u.__dict__ for u in data.utterances])
        done_file = out_dir / f"{name}.done"
        if reuse:
            earlier = _finished_before(done_file, run_id)
            if earlier is not None:
                log.info("%s: finished by an earlier run with the same inputs, options and code; reused", done_file)
                return earlier
        done_file.unlink(missing_ok=True)  # this job is not done until mark_done()
        with open_writer(out_dir, name, compress, run_id, layers, featurizer.dim) as writer:
            if writer.resumed:
                log.info("resuming: %d utterances were done by an earlier run", len(writer.processed))
            padding = _run(featurizer, inputs, data, writer, batch_frames, pool, progress, model, log_interval, vad)
        for where, its_writer, its_settings in outputs(out_dir, writer, settings, layers):  # one, or each layer's
            summary = _write_outputs(where, name, its_writer, featurizer, its_settings, data, pool, data_copy, vad,
                                     padding)
        summary.fingerprint, summary.done_file = run_id, done_file
        return summary
    finally:  # also when interrupted: a caller that goes on (a test, a library user) may run again
        lock.release()


def _write_outputs(out_dir, name, writer, featurizer, settings, data, pool, data_copy, vad, padding):
    """Everything but the archive, from a finished ``writer``: failed, utt2num_frames,
    frame_shift, conf/, data/ (speaker means when pooled); returns the Summary."""
    failures = writer.failures
    write_scp_like(out_dir / ("failed" if name == "feats" else f"{name}.failed"),
                   sorted(failures.items(), key=lambda x: x[0].encode()))
    entries = writer.scp_entries()
    summary = Summary(len(entries), len(failures), sum(writer.seconds[k] for k, _ in entries), padding)
    if pool != "none":
        if data.utt2spk and data_copy:
            xvectors.write_speaker_means(out_dir, entries, data.utt2spk)
        return summary
    write_scp_like(out_dir / ("utt2num_frames" if name == "feats" else f"{name}.utt2num_frames"),
                   ((k, writer.num_frames[k]) for k, _ in entries))
    # a job of featurize.sh (a name of its own) prefixes them too: jobs share the feature dir
    prefix = "" if name == "feats" else f"{name}."
    (out_dir / f"{prefix}frame_shift").write_text(f"{featurizer.frame_shift:g}\n")
    conf_files = _conf_files(featurizer, settings)
    (out_dir / f"{prefix}conf").mkdir(exist_ok=True)
    for conf_name, text in conf_files.items():  # featurize.sh copies them into the data dir
        (out_dir / f"{prefix}conf" / conf_name).write_text(text, encoding="utf-8")
    if data_copy:
        write_output_data_dir(data.path, out_dir / "data", entries, writer.num_frames,
                              featurizer.frame_shift, conf_files, data.utt2spk)
        drop_stale_vad_scp(out_dir / "data", featurizer.frame_shift, frames_selected=vad is not None)
    return summary


def _writable_dir(out_dir):
    """``out_dir``, created; an unwritable one is an error before any work."""
    out_dir = Path(out_dir)
    for path in (out_dir, out_dir / "conf", out_dir / "data"):  # directories we write into
        if path.exists() and not path.is_dir():
            raise ConfigError(f"cannot write to {path}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write to {out_dir}: {e.strerror}") from None
    return out_dir


def _run(featurizer, inputs, data, writer, batch_frames, pool, progress, model, log_interval, vad=None):
    """Length-bucketed batches through the model into ``writer`` (in its own thread);
    returns the padding statistics. ``vad``: a VoicedFrames, keep (or pool) only the voiced
    frames."""
    # what an earlier run finished, read before the writer thread starts changing it
    done, planned, failed = writer.processed, dict(writer.planned_frames), set(writer.failures)
    todo = [u for u in data.utterances if u.utt not in done]
    bucketer = LengthBucketer(batch_frames)
    meter = Progress(len(data), len(data) - len(todo), sum(writer.seconds.values()), desc=model,
                     bar=progress, interval=log_interval)
    background = BackgroundWriter(writer)
    next_checkpoint = time.monotonic()  # the first batch is made durable at once

    def on_error(e):
        log.error("%s", e)
        if e.utt not in failed:
            failed.add(e.utt)
            background.put([("fail", e.utt, e.cause)])
            meter.update(1)

    stream = None
    try:
        if inputs.spk_stats is not None:  # stats of every utterance, also those done before a resume
            inputs.accumulate_speaker_stats(data.utterances, on_error)
        stream = _replayed(data.utterances, planned, inputs.stream(todo, on_error))
        sized = ((item, item[2] if item[1] is None else featurizer.num_frames(item[2])) for item in stream)
        for group in bucketer.batches(sized):
            group = [item for item in group if item[1] is not None]  # done before a resume
            if not group:
                continue
            utts = [u for u, _, _ in group]
            batch = Batch([u.utt for u in utts], inputs.model_inputs(utts, [x for _, x, _ in group]),
                          [n for _, _, n in group])
            ops, seconds = [], 0.0
            for key, n, feats in zip(batch.keys, batch.num_samples, _featurize_within_memory(featurizer, batch)):
                if isinstance(feats, MemoryError):
                    source, cause = "model", (f"the model ran out of memory on {n / featurizer.sample_rate:.0f} s of audio "
                             f"({feats}); cut the recording with a segments file")
                elif not np.isfinite(feats).all():
                    source, cause = "model output", "model output contains NaN or Inf"
                elif vad is not None and isinstance(voiced := vad.select(key, n, feats), AudioError):
                    source, cause = voiced.source, voiced.cause
                else:
                    kept, planned = (feats if vad is None else voiced), len(feats)  # planned: as batched
                    duration = n / featurizer.sample_rate
                    if pool != "none":
                        ops.append(("write", key, featurizer.pool(kept, pool), planned, duration))
                    else:
                        ops.append(("write", key, kept, None if vad is None else planned, duration))
                    seconds += duration
                    continue
                log.error("%s", AudioError(key, source, cause))
                failed.add(key)
                ops.append(("fail", key, cause))
            if time.monotonic() >= next_checkpoint:  # fsyncs cost the disk's time: not every batch
                ops.append(("checkpoint",))
                next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
            background.put(ops)
            meter.update(len(batch.keys), seconds)
        background.put([("checkpoint",)])  # failures after the last batch
    finally:
        if stream is not None:  # stop the readers now: left to a reference cycle, the worker pool
            stream.close()      # would be shut down at exit, after its own cleanup (EBADF traceback)
        background.stop()
        meter.close()
    background.check()
    return bucketer.stats


def _out_of_memory(error):
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and ("out of memory" in str(error) or "can't allocate memory" in str(error)))


def _featurize_within_memory(featurizer, batch):
    """The model's outputs for ``batch``. When the batch does not fit in memory, its utterances
    go one by one; one that does not fit alone (a long recording in a model that cannot be cut
    exactly) gets a MemoryError in place of its output, and the job goes on."""
    try:
        outputs = featurizer.featurize(batch)
    except (RuntimeError, MemoryError) as e:
        if not _out_of_memory(e):
            raise
        _release_gpu_memory()
        if len(batch.keys) == 1:
            return [MemoryError(str(e).splitlines()[0][:200])]
        log.warning("batch of %d utterances ran out of memory; running them one by one", len(batch.keys))
        return [_featurize_within_memory(featurizer, Batch([k], [x], [n]))[0]
                for k, x, n in zip(batch.keys, batch.inputs, batch.num_samples)]
    featurizer.check_output(batch, outputs)
    return outputs


def _release_gpu_memory():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _replayed(utterances, planned, fresh):
    """The stream of a resumed run as the first run saw it, so its batches are the same: an
    utterance written before stands in as (utt, None, the frame count its batch was planned
    with: ``planned``), the rest come from ``fresh``. (Utterances that failed before are left
    out, as they were then.)"""
    fresh = iter(fresh)
    pending = next(fresh, None)
    for utt in utterances:
        if utt.utt in planned:
            yield utt, None, planned[utt.utt]  # frames, not samples
        elif pending is not None and pending[0] is utt:
            yield pending
            pending = next(fresh, None)


class FileFeaturizer:
    """One model, many single files: ``FileFeaturizer("decoar", {...})(path) -> (T, dim)``."""

    def __init__(self, model="fbank", model_options=None, allow_resample=False, channel=None,
                 pipe_timeout=DEFAULT_PIPE_TIMEOUT):
        self.featurizer = create(model, **(model_options or {}))
        self._inputs = _Inputs(self.featurizer, None, allow_resample, channel, pipe_timeout=pipe_timeout)

    def __call__(self, path):
        """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
        utt = Utterance(Path(path).name, Path(path).name, str(path))
        errors = []
        items = list(self._inputs.stream([utt], errors.append))
        if errors:
            raise errors[0]
        (_, x, n), = items
        batch = Batch([utt.utt], self._inputs.model_inputs([utt], [x]), [n])
        outputs = self.featurizer.featurize(batch)
        self.featurizer.check_output(batch, outputs)
        return outputs[0]


def featurize_file(path, model="fbank", model_options=None, allow_resample=False, channel=None,
                   pipe_timeout=DEFAULT_PIPE_TIMEOUT):
    """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
    return FileFeaturizer(model, model_options, allow_resample, channel, pipe_timeout)(path)
