"""The one data path: data dir -> audio -> front end -> model -> ark/scp + output data dir.

Writes, under ``out_dir``: feats.ark, feats.scp (absolute paths), utt2num_frames, frame_shift,
and data/ (the input data dir pointing at the new features, with conf/ recording the options).
A bad utterance is logged with its id, source and cause, and the others are still written.
"""

import functools
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from speech_reps import __version__
from speech_reps.engine.batching import LengthBucketer, PaddingStats
from speech_reps.engine.input_stage import InputStage, Ready, Replayed
from speech_reps.engine.job import Job, check_job, done_path
from speech_reps.engine.output import OutputPath
from speech_reps.engine.writer import BackgroundWriter
from speech_reps.errors import AudioError
from speech_reps.fingerprint import (code_identity, file_identity, fingerprint, inputs_identity,
                                     options_identity, table_targets_identity)
from speech_reps.frontend.options import PROGRAMS
from speech_reps.kaldi import Utterance, write_output_data_dir
from speech_reps.kaldi import xvectors
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT
from speech_reps.kaldi.lock import lock_output_dir
from speech_reps.kaldi.vad import drop_stale_vad_scp
from speech_reps.kaldi.writer import write_scp_like
from speech_reps.layer_sweep import open_writer, outputs, sweep_layers
from speech_reps.models.base import Batch
from speech_reps.models.registry import create
from speech_reps.models.torch_device import host_array
from speech_reps.progress import Progress

log = logging.getLogger(__name__)

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
    outputs: list = None  # the archives and scps written: a finished job is reused only while they are

    @property
    def failed_fraction(self):
        return self.failed / max(1, self.done + self.failed)

    def line(self):
        return (f"done {self.done} utterances ({self.seconds_of_audio / 3600:.3f} h of audio), "
                f"failed {self.failed}")


def mark_done(summary):
    """Record that the job of ``summary`` finished (written last: ``reuse`` trusts it)."""
    record = {"fingerprint": summary.fingerprint, "done": summary.done, "failed": summary.failed,
              "seconds_of_audio": summary.seconds_of_audio,
              "outputs": {str(p): file_identity(p) for p in summary.outputs or ()}}
    write_scp_like(summary.done_file, [("job", json.dumps(record, sort_keys=True))])


def _finished_before(done_file, fingerprint):
    """The Summary an earlier run recorded in ``done_file`` for this very fingerprint, or None."""
    try:
        record = json.loads(done_file.read_text(encoding="utf-8").partition(" ")[2])
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    outputs = record.get("outputs")
    if not isinstance(outputs, dict) or any(file_identity(p) != identity for p, identity in outputs.items()):
        return None  # an archive or scp deleted or written over since: the job is redone
    return Summary(record["done"], record["failed"], record["seconds_of_audio"],
                   fingerprint=fingerprint, done_file=done_file, reused=True)


def _conf_files(featurizer, settings):
    files = {"featurize.yaml": yaml.safe_dump(settings, sort_keys=False)}
    if featurizer.frontend is not None:
        opts = featurizer.frontend.options
        header = f"{PROGRAMS[opts.kind]} options used by speech-reps {__version__}"
        files[f"{opts.kind}.conf"] = opts.to_conf_text(header)
    return files


def run_generation(checked, given_options):
    """8 hex digits naming one run of steps/featurize.sh: a hash of what its output depends on
    (the options as given, their files, the code, the whole data dir and its audio, the VAD
    archives). Its jobs write archives of this name, so a run with other options or inputs never
    writes into the archives the data dir's feats.scp points at: until its stage 2 succeeds,
    they are the data dir's features. The same run again finds its own jobs (resumed, reused)."""
    return fingerprint(given_options, *_output_depends_on(checked.job, checked.featurizer, checked.data))[:8]


def _output_depends_on(job, featurizer, data):
    """What a job's output depends on beyond its settings: option values and their files, the
    front end's conf, the code, the data dir's tables and audio, the VAD archives."""
    return (options_identity({**job.model_options, **featurizer.describe(), "vad_scp": job.vad_scp}),
            _conf_files(featurizer, {}), code_identity(),
            inputs_identity(data.path, {u.rec: u.rxfile for u in data.utterances}),
            [u.__dict__ for u in data.utterances],
            table_targets_identity(job.vad_scp) if job.vad_scp else None)


def featurize_data_dir(job: Job) -> Summary:
    """Featurize every utterance of ``job.data_dir`` into ``job.out_dir`` (see Job); returns a
    Summary.

    Failed utterances go to <out_dir>/failed ("<utt> <reason>"; <name>.failed for other names).
    A run killed part way resumes when the same job is run again (see kaldi/writer.py), to
    byte-identical output; with ``job.reuse`` a job that an earlier run finished (``mark_done``)
    with the same fingerprint -- inputs, option values, code -- is not redone.
    """
    checked = check_job(job, start_loaders=True)  # the loader workers start while the model loads
    try:
        return _featurize_checked(checked)
    finally:
        if checked.loaders is not None:
            checked.loaders.close()


def _featurize_checked(checked):
    job = checked.job  # its batch size and loader workers decided
    data, featurizer, vad, out_dir = checked.data, checked.featurizer, checked.vad, checked.out_dir
    for problem in data.audio_problems:
        log.error("%s", problem)
    model_options = job.model_options
    lock = lock_output_dir(out_dir, job.name)  # one run per output
    try:
        settings = {
            "speech_reps_version": __version__, "model": job.model, "data_dir": str(job.data_dir.resolve()),
            "model_options": {k: str(v) if isinstance(v, Path) else v for k, v in model_options.items()},
            "compress": job.compress, "allow_resample": job.allow_resample, "channel": job.channel,
            "featurizer": featurizer.describe(),
        }
        if vad is not None:  # only then: runs without VAD keep their settings
            settings["vad_scp"] = str(vad.path.resolve())
        layers = sweep_layers(model_options)  # --layer 4,8,12: one output per layer, one pass
        run_id = fingerprint(settings, *_output_depends_on(job, featurizer, data), job.batch_frames, job.pool,
                             job.name)
        done_file = done_path(out_dir, job.name)
        if job.reuse:
            earlier = _finished_before(done_file, run_id)
            if earlier is not None:
                log.info("%s: finished by an earlier run with the same inputs, options and code; reused", done_file)
                return earlier
        done_file.unlink(missing_ok=True)  # this job is not done until mark_done()
        with open_writer(out_dir, job.name, job.compress, run_id, layers, featurizer.dim) as writer:
            if writer.resumed:
                log.info("resuming: %d utterances were done by an earlier run", len(writer.processed))
            padding = _run(checked, writer)
        written = []
        for where, its_writer, its_settings in outputs(out_dir, writer, settings, layers):  # one, or each layer's
            summary = _write_outputs(where, job.name, its_writer, featurizer, its_settings, data, job.pool,
                                     job.data_copy, vad, padding)
            written += [where / f"{job.name}.ark", where / f"{job.name}.scp"]
        summary.fingerprint, summary.done_file, summary.outputs = run_id, done_file, written
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


def _run(checked, writer):
    """Length-bucketed batches through the model into ``writer`` (in its own thread);
    returns the padding statistics. With a VAD table, only the voiced frames are kept (or
    pooled)."""
    job, featurizer, inputs, data = checked.job, checked.featurizer, checked.inputs, checked.data
    # what an earlier run finished, read before the writer thread starts changing it
    done, planned, failed = writer.processed, dict(writer.planned_frames), set(writer.failures)
    todo = [u for u in data.utterances if u.utt not in done]
    bucketer = LengthBucketer(job.batch_frames, max_padding=checked.max_padding)
    meter = Progress(len(data), len(data) - len(todo), sum(writer.seconds.values()), desc=job.model,
                     bar=job.progress, interval=job.log_interval)
    background = BackgroundWriter(writer)
    output_path = OutputPath(check=background.check)
    next_checkpoint = time.monotonic()  # the first batch is made durable at once

    def on_error(e):  # once per utterance: --cmvn spk's two passes both read it
        if e.utt not in failed:
            log.error("%s", e)
            failed.add(e.utt)
            background.put([("fail", e.utt, e.cause)])
            meter.update(1)

    stream = None
    try:
        if inputs.spk_stats is not None:  # stats of every utterance, also those done before a resume
            inputs.accumulate_speaker_stats(data.utterances, on_error)
            todo = [u for u in todo if u.utt not in failed]  # not read again: left out of the stats too
        stream = _replayed(data.utterances, planned, inputs.stream(todo, on_error))
        for group in bucketer.batches((item, item.frames) for item in stream):
            group = [item for item in group if isinstance(item, Ready)]  # not those done before a resume
            if not group:
                continue
            batch = Batch([item.utt.utt for item in group], inputs.model_inputs(group),
                          [item.num_samples for item in group])
            host = output_path.take(_featurize_within_memory(featurizer, batch))
            settle = functools.partial(_settle, checked, batch.keys, batch.num_samples, host)
            # host arrays are checked here; a device batch in the writer thread, once copied
            ops = [settle, host.release] if host.deferred else settle()
            if time.monotonic() >= next_checkpoint:  # fsyncs cost the disk's time: not every batch
                ops.append(("checkpoint",))
                next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
            background.put(ops)
            meter.update(len(batch.keys), sum(batch.num_samples) / featurizer.sample_rate)
        background.put([("checkpoint",)])  # failures after the last batch
    finally:
        if stream is not None:  # stop the readers now: left to a reference cycle, the worker pool
            stream.close()      # would be shut down at exit, after its own cleanup (EBADF traceback)
        background.stop()
        meter.close()
    background.check()
    return bucketer.stats


def _settle(checked, keys, num_samples, host):
    """The writer's operations for a batch's outputs (``host``, a HostOutputs): each one
    checked (finite; voiced frames with a VAD table), pooled with --pool, or failed with its
    cause (logged)."""
    job, featurizer, vad = checked.job, checked.featurizer, checked.vad
    host.wait()
    host.writer_stream()  # this is the writer's thread
    ops = []
    for i, (key, n, feats) in enumerate(zip(keys, num_samples, host.arrays)):
        if isinstance(feats, MemoryError):
            source, cause = "model", (f"the model ran out of memory on {n / featurizer.sample_rate:.0f} s of audio "
                                      f"({feats}); cut the recording with a segments file")
        elif not host.finite(i):
            source, cause = "model output", "model output contains NaN or Inf"
        elif vad is not None and isinstance(voiced := vad.select(key, n, host_array(feats)), AudioError):
            source, cause = voiced.source, voiced.cause
        else:
            kept, frames = (feats if vad is None else voiced), len(feats)  # frames: as batched
            duration = n / featurizer.sample_rate
            if job.pool != "none":
                ops.append(("write", key, featurizer.pool(host_array(kept), job.pool), frames, duration))
            else:
                ops.append(("write", key, kept, None if vad is None else frames, duration))
            continue
        error = AudioError(key, source, cause)
        log.error("%s", error)
        ops.append(("fail", key, error.cause))
    return ops


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
    utterance written before stands in as a Replayed item with the frame count its batch was
    planned with (``planned``), the rest are the Ready items of ``fresh``. (Utterances that
    failed before are left out, as they were then.)"""
    fresh = iter(fresh)
    pending = next(fresh, None)
    for utt in utterances:
        if utt.utt in planned:
            yield Replayed(utt, planned[utt.utt])
        elif pending is not None and pending.utt is utt:
            yield pending
            pending = next(fresh, None)


class FileFeaturizer:
    """One model, many single files: ``FileFeaturizer("decoar", {...})(path) -> (T, dim)``."""

    def __init__(self, model="fbank", model_options=None, allow_resample=False, channel=None,
                 pipe_timeout=DEFAULT_PIPE_TIMEOUT):
        self.featurizer = create(model, **(model_options or {}))
        self._inputs = InputStage(self.featurizer, None, allow_resample, channel, pipe_timeout=pipe_timeout)

    def __call__(self, path):
        """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
        utt = Utterance(Path(path).name, Path(path).name, str(path))
        errors = []
        items = list(self._inputs.stream([utt], errors.append))
        if errors:
            raise errors[0]
        batch = Batch([utt.utt], self._inputs.model_inputs(items), [items[0].num_samples])
        outputs = self.featurizer.featurize(batch)
        self.featurizer.check_output(batch, outputs)
        return host_array(outputs[0])  # a numpy array, also from a model on a GPU


def featurize_file(path, model="fbank", model_options=None, allow_resample=False, channel=None,
                   pipe_timeout=DEFAULT_PIPE_TIMEOUT):
    """Features (T, dim) float32 of one audio file (or ``cmd |``), as one utterance."""
    return FileFeaturizer(model, model_options, allow_resample, channel, pipe_timeout)(path)
