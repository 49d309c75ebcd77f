"""A featurization job: what to featurize, where to, and how, checked once.

``Job`` is what steps/featurize.py's options describe (the library's callers build one too);
``check_job`` resolves it against the world -- the data dir, the model and its weights, the VAD
table, a writable output dir -- before the first utterance (featurize.sh runs it once on the
console: featurize.py --check-only). ``run.featurize_data_dir(job)`` does the work.
"""

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from speech_reps.defaults import CPU_BATCH_FRAMES
from speech_reps.errors import ConfigError
from speech_reps.kaldi import DataDir
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT
from speech_reps.kaldi.xvectors import POOLS

# A Job built without them keeps these, as the library always has; steps/featurize.py passes None:
# the defaults of the model on its device, chosen by measurement (speech_reps/defaults.py).
LIBRARY_BATCH_FRAMES, LIBRARY_NUM_WORKERS = CPU_BATCH_FRAMES, 0


@dataclass(frozen=True)
class Job:
    """One job of steps/featurize.py.

    Output: <out_dir>/<name>.ark, <name>.scp (absolute paths), utt2num_frames (<name>.utt2num_frames
    for other names), frame_shift, conf/ and, with ``data_copy``, data/ (the data dir pointing at
    the features). ``pool="mean"``: one vector per utterance instead, written as Kaldi's
    extract_xvectors.sh does (xvector.scp, spk_xvector.scp, num_utts.ark); pooled vectors are
    never compressed (extract_xvectors.sh writes them plain) and ``name`` "feats" becomes "xvector".
    ``model_options["layer"]`` a tuple (--layer 4,8,12): one output per layer from one pass, in
    <out_dir>/layer<N>/ (layer_sweep.py). ``vad_scp``: a Kaldi vad.scp, only voiced frames are
    written or pooled (kaldi/vad.py).
    ``num_workers``: processes reading audio and preparing the model's inputs ahead of the model
    (0: in this process); ``batch_frames``: padded output frames per model call. The output
    depends on neither. None: the model's default on its device (defaults.py), resolved by
    ``check_job``.
    ``reuse``: a job an earlier run finished with the same fingerprint (inputs, options, code) is
    not redone; a killed run is resumed either way. ``pipe_timeout``: seconds a ``cmd |`` of
    wav.scp may take for one recording. ``progress``: a bar on stderr, else a log line every
    ``log_interval`` seconds.
    """

    data_dir: Path
    out_dir: Path
    model: str = "fbank"
    model_options: dict = field(default_factory=dict)
    vad_scp: Path = None
    # the output
    compress: bool = False
    pool: str = "none"
    name: str = "feats"
    data_copy: bool = True
    # reading the audio
    allow_resample: bool = False
    channel: int = None
    pipe_timeout: float = DEFAULT_PIPE_TIMEOUT
    # the engine: the output depends on none of these
    batch_frames: int = LIBRARY_BATCH_FRAMES
    num_workers: int = LIBRARY_NUM_WORKERS
    reuse: bool = False
    progress: bool = True
    log_interval: float = 30.0

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name in (".", "..") or any(c.isspace() for c in self.name):
            raise ConfigError(f"--name {self.name!r}: expected a file name (no '/', no spaces): the outputs are "
                              "<out-dir>/<name>.ark, .scp, ...")
        if self.pool not in POOLS:
            raise ConfigError(f"--pool {self.pool}: expected one of {', '.join(POOLS)}")
        if self.batch_frames is not None and self.batch_frames < 1:
            raise ConfigError(f"--batch-frames {self.batch_frames}: expected a positive number of frames")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"--num-workers {self.num_workers}: expected 0 or more processes")
        if self.channel is not None and self.channel < -1:
            raise ConfigError(f"--channel {self.channel}: expected a channel index from 0 (or -1: mono audio)")
        if not self.pipe_timeout > 0:
            raise ConfigError(f"--pipe-timeout {self.pipe_timeout}: expected a positive number of seconds")
        normalised = {"data_dir": Path(self.data_dir), "out_dir": Path(self.out_dir),
                      "vad_scp": Path(self.vad_scp) if self.vad_scp else None,
                      "model_options": dict(self.model_options or {})}
        if self.pool != "none":
            normalised.update(compress=False, name="xvector" if self.name == "feats" else self.name)
        for name, value in normalised.items():  # frozen: set here, once
            object.__setattr__(self, name, value)


@dataclass
class CheckedJob:
    """A Job resolved: its data dir, model, input stage, VAD table and output dir; ``job`` with
    its batch size and loader workers decided."""

    job: Job
    data: DataDir
    featurizer: object  # models.base.Featurizer
    inputs: object  # input_stage.InputStage
    vad: object  # kaldi.vad.VoicedFrames, or None
    out_dir: Path
    max_padding: float  # the length buckets' bound for this model and device (defaults.py)
    loaders: object = None  # prefetch.Loaders started by check_job, or None (the caller closes them)


def check_job(job: Job, start_loaders=False) -> CheckedJob:
    """What ``job`` needs before its first utterance, checked; a SpeechRepsError names what is
    wrong. Loads the model (and its weights). ``start_loaders``: the loader workers are started
    first, and start while the model loads (the caller closes ``CheckedJob.loaders``); where the
    model's inputs can be foreseen (``InputSpec.before_model``) they read the data dir's
    utterances meanwhile, for the job's first pass to take over."""
    from speech_reps import defaults
    from speech_reps.engine.input_stage import InputStage
    from speech_reps.engine.inputs import InputSpec
    from speech_reps.engine.prefetch import Loaders
    from speech_reps.kaldi.vad import VoicedFrames
    from speech_reps.models.registry import create, get_model_class

    data = DataDir.load(job.data_dir, lenient=True)
    check_apart(job)
    if job.num_workers is None:
        job = dataclasses.replace(job, num_workers=defaults.default_num_workers(
            job.model, defaults.requested_device(job.model_options)))
    loaders = Loaders(job.num_workers) if start_loaders and job.num_workers > 0 else None
    try:
        if loaders is not None and not _earlier_run(job):  # they read while the model loads, if
            # its inputs can be foreseen; not for a run that resumes or reuses another's work
            guess = InputSpec.before_model(get_model_class(job.model), job.model_options, job.allow_resample,
                                           job.channel, job.pipe_timeout)
            if guess is not None:
                loaders.begin(data.utterances, guess)
        featurizer = create(job.model, **job.model_options)
        device = defaults.featurizer_device(featurizer)
        if job.batch_frames is None:
            job = dataclasses.replace(job, batch_frames=defaults.default_batch_frames(job.model, device,
                                                                                      featurizer.frame_shift))
        inputs = InputStage(featurizer, data, job.allow_resample, job.channel, job.num_workers, job.pipe_timeout,
                            loaders=loaders)
        vad = VoicedFrames(job.vad_scp, featurizer) if job.vad_scp else None
        return CheckedJob(job, data, featurizer, inputs, vad, writable_dir(job.out_dir),
                          defaults.default_max_padding(job.model, device), loaders)
    except BaseException:
        if loaders is not None:
            loaders.close()
        raise


def check_apart(job):
    """A ConfigError when ``job`` would write over its own data dir: the data dir is the output
    dir and the job writes the unprefixed files there (feats.scp, utt2num_frames, frame_shift,
    conf/) or a data/ into it, or the data dir is, or lies inside, an output data/ that a run
    replaces whole (<out>/data, a layer sweep's <out>/layerN/data). A job of steps/featurize.sh
    (its own name, no data/) may share a directory with its split data dir."""
    from speech_reps.layer_sweep import layer_dir, sweep_layers

    data, out = job.data_dir.resolve(), job.out_dir.resolve()
    if data == out and (job.data_copy or job.name in ("feats", "xvector")):
        where = "is the output dir"
    elif job.data_copy and any(data == d or d in data.parents for d in
                               [out / "data"] + [layer_dir(out, n) / "data" for n in
                                                 sweep_layers(job.model_options) or ()]):
        where = f"lies inside the output dir {job.out_dir}'s data/"
    else:
        return
    raise ConfigError(f"{job.data_dir}: the data dir {where}, whose feats.scp, utt2num_frames, "
                      "conf/ and data/ a run replaces: give an output dir outside the data dir "
                      "(steps/featurize.sh updates a data dir in place, keeping a backup)")


def done_path(out_dir, name):
    """The file that marks <out_dir>/<name>'s job finished (engine/run.py, ``--reuse``)."""
    return Path(out_dir) / f"{name}.done"


def _earlier_run(job):
    """Whether ``job``'s output dir holds an earlier run's work (a journal to resume, or with
    ``reuse`` a finished run): its first pass would not read the data dir from the start."""
    from speech_reps.kaldi.writer import journal_path

    out = Path(job.out_dir)
    arks = [out / f"{job.name}.ark", *(d / f"{job.name}.ark" for d in out.glob("layer*"))]  # a sweep's: per layer
    return any(journal_path(ark).exists() for ark in arks) or (job.reuse and done_path(out, job.name).exists())


def writable_dir(out_dir):
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
