"""One measurement, run in its own process so its peak memory is its own (the parent reads it
with wait4). Prints one JSON line: wall seconds, audio seconds, output frames, GPU memory.

Paths:
  engine  the toolkit's data path (steps/featurize.py's featurize_data_dir): loader workers,
          length buckets, writer thread
  seed    the original toolkit's way: one utterance at a time, batch 1, the front end built and
          run per file, written as it comes
  network the model's calls alone: the engine's batches (same length buckets and batch size),
          their inputs made beforehand and held in memory, the outputs left on the device; the
          rate the engine's data path is measured against
The engine's JSON also has ``first_batch``: the wall-clock time (time.time()) its first model
call started, for the parent's start-up-to-first-batch, and ``end``.
--model null (bench/null_model.py) measures the engine's data path alone.
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path


def command(path, model, options, data, out, compress=False, num_workers=None, batch_frames=None, extra=()):
    """The command line of one measurement (for the parent benches to run)."""
    cmd = [sys.executable, "-m", "bench.measure", "--path", path, "--model", model, "--options",
           json.dumps(options), "--compress", "true" if compress else "false", str(data), str(out)]
    if batch_frames is not None:
        cmd += ["--batch-frames", str(batch_frames)]
    if num_workers is not None:
        cmd += ["--num-workers", str(num_workers)]
    return cmd + list(extra)


def get_args():
    p = argparse.ArgumentParser()
    p.add_argument("--path", choices=("engine", "seed", "network"), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--options", default="{}", help="model options, JSON")
    p.add_argument("--num-workers", type=int, default=None, help="default: the toolkit's")
    p.add_argument("--batch-frames", type=int, default=None, help="default: the toolkit's")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compress", choices=("true", "false"), default="false")
    p.add_argument("--max-padding", type=float, default=None,
                   help="engine: the length buckets' padding bound (default: the toolkit's, speech_reps/defaults.py)")

    p.add_argument("--profile", type=int, default=0, metavar="ROWS",
                   help="engine: run under torch's profiler (host and, on a GPU, device activity) and "
                        "add its ROWS busiest operators by host time to the JSON (\"profile\"): which "
                        "kernels a model runs and what the host waits in")
    p.add_argument("--sample-threads", action="store_true",
                   help="engine: where its threads are, sampled every 10 ms (JSON: threads)")
    p.add_argument("data")
    p.add_argument("out")
    return p.parse_args()


def seed_style(model, options, data_dir, out):
    """The seed's loop; returns the number of frames written to ``out``/feats.{ark,scp}."""
    import dataclasses

    import kaldiio

    from speech_reps.frontend import FrontEnd
    from speech_reps.engine.inputs import InputReader, InputSpec
    from speech_reps.kaldi import DataDir
    from speech_reps.models.base import Batch
    from speech_reps.models.registry import create
    from speech_reps.models.torch_device import host_array

    featurizer = create(model, **options)
    # the reader returns audio; the model's own front end (the torch one on a GPU) runs below
    spec = dataclasses.replace(InputSpec.for_model(featurizer), frontend=None)
    frames = 0
    with kaldiio.WriteHelper(f"ark,scp:{out}/feats.ark,{out}/feats.scp") as writer:
        for utt in DataDir.load(data_dir).utterances:
            reader = InputReader(spec)
            x, n = reader.read(utt)
            if featurizer.input == "fbank":
                frontend = FrontEnd(featurizer.frontend)  # front end set up per file, as the seed did
                x = frontend.normalise(utt.utt, frontend.features(utt.utt, x))
            feats = host_array(featurizer.featurize(Batch([utt.utt], [x], [n]))[0])  # .cpu(), as the seed
            writer(utt.utt, feats)
            frames += len(feats)
    return frames


class ThreadSampler:
    """Where the engine's threads are, sampled every ``interval`` seconds (``sys._current_frames``,
    a few microseconds under the GIL each time): per thread (main, feature-writer, read-ahead),
    the share of samples at each "our function -> innermost function" pair, where "ours" is the
    innermost frame in speech_reps/ and the innermost is what it waits in (a lock, a pipe's
    read, a CUDA synchronisation). It says what "other (loader wait)" is made of."""

    THREADS = ("MainThread", "feature-writer", "read-ahead")

    def __init__(self, interval=0.01):
        import collections
        import threading

        self.interval = interval
        self.counts = {name: collections.Counter() for name in self.THREADS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    @staticmethod
    def _label(frame):
        inner = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
        while frame is not None and "speech_reps" not in frame.f_code.co_filename:
            frame = frame.f_back
        ours = "(not in speech_reps)" if frame is None else \
            f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}:{frame.f_lineno}"
        return ours if ours.startswith(inner + ":") else f"{ours} -> {inner}"

    def _run(self):
        import threading

        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                name = names.get(ident)
                if name in self.counts:
                    self.counts[name][self._label(frame)] += 1

    def top(self, n=8):
        """{thread: [[label, share of its samples], ...]} (the n most frequent)."""
        self._stop.set()
        self._thread.join()
        return {name: [[label, round(c / sum(counts.values()), 3)] for label, c in counts.most_common(n)]
                for name, counts in self.counts.items() if counts}


def time_stages(marks):
    """Seconds the engine spends in each stage, summed over the run (a dict filled as it goes),
    by wrapping the engine's functions; also ``marks["first_batch"]``, the wall-clock time of
    the first model call. Main thread: ``front_end`` (the input stage's model inputs: the GPU
    front end), ``model`` (featurize: on a GPU mostly launching kernels), ``output`` (handing
    the outputs to the writer thread: an event and their finiteness flags queued), ``queue`` (waiting for the
    writer's queue: the writer is behind); the rest of the main loop's time is waiting for the
    loader workers. Writer thread: ``writer`` (all of its work), of which ``device`` (waiting
    for a batch's model work, and with float32 rows for each matrix's copy: for the GPU)."""
    import speech_reps.engine.run as engine_run
    from speech_reps.engine.input_stage import InputStage
    from speech_reps.engine.output import HostOutputs, OutputPath
    from speech_reps.engine.writer import BackgroundWriter
    from speech_reps.kaldi.host_staging import HostStaging

    stages = {name: 0.0 for name in ("front_end", "model", "output", "queue", "writer", "device")}

    def timed(owner, attr, name, first=False):
        inner = getattr(owner, attr)
        depth = [0]  # the writer's _apply calls itself: the outermost call counts

        def wrapper(*a, **kw):
            if first:
                marks.setdefault("first_batch", time.time())
            start = time.perf_counter()
            depth[0] += 1
            try:
                return inner(*a, **kw)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    stages[name] += time.perf_counter() - start

        setattr(owner, attr, wrapper)

    check_job = engine_run.check_job

    def checked_marked(job, **options):  # the model loaded (and CUDA started)
        marks["imported"] = marks.get("imported", time.time())
        try:
            return check_job(job, **options)
        finally:
            marks["checked"] = time.time()

    engine_run.check_job = checked_marked
    timed(engine_run, "_featurize_within_memory", "model", first=True)
    timed(InputStage, "model_inputs", "front_end")
    timed(OutputPath, "take", "output")
    timed(BackgroundWriter, "put", "queue")
    timed(BackgroundWriter, "_apply", "writer")
    timed(HostOutputs, "wait", "device")
    timed(HostStaging, "take", "device")  # float32 rows: waiting for a matrix's copy to the host
    return stages


def profiled():
    """torch's profiler over the host and, where there is one, the GPU."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    return profile(activities=activities)


def network_alone(model, options, data_dir, batch_frames):
    """Seconds the model's calls take over the engine's batches of ``data_dir`` (inputs made
    first, outside the clock; outputs dropped on the device), the frames they make, and the
    seconds of a second pass over the same batches: each batch shape then seen before, so the
    difference is what the first sight of a shape costs (kernel plans chosen and built per
    shape, workspaces grown)."""
    import torch

    from speech_reps import defaults
    from speech_reps.engine.batching import LengthBucketer
    from speech_reps.engine.input_stage import InputStage
    from speech_reps.kaldi import DataDir
    from speech_reps.models.base import Batch
    from speech_reps.models.registry import create

    featurizer = create(model, **options)
    device = defaults.featurizer_device(featurizer)
    if batch_frames is None:
        batch_frames = defaults.default_batch_frames(model, device, featurizer.frame_shift)
    data = DataDir.load(data_dir)
    stage = InputStage(featurizer, data)
    max_padding = defaults.default_max_padding(model, device)  # the engine's (and --max-padding's)
    items = ((item, item.frames) for item in stage.stream(data.utterances, lambda error: None))
    groups = list(LengthBucketer(batch_frames, max_padding=max_padding).batches(items))
    batches = [Batch([i.utt.utt for i in g], stage.model_inputs(g), [i.num_samples for i in g]) for g in groups]
    cuda = str(device).startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    featurizer.featurize(batches[0])  # warm-up: kernels chosen, workspaces allocated
    sync()
    passes = []
    for _ in range(2):
        start = time.perf_counter()
        for batch in batches:
            featurizer.featurize(batch)
        sync()
        passes.append(time.perf_counter() - start)
    return passes[0], sum(featurizer.num_frames(n) for b in batches for n in b.num_samples), passes[1]


def main():
    main_started = time.time()  # after the interpreter and this module's imports
    args = get_args()
    options = json.loads(args.options)
    if isinstance(options.get("layer"), list):  # a layer sweep (JSON has no tuples)
        options["layer"] = tuple(options["layer"])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.model == "null":
        import bench.null_model  # noqa: F401 - registers --model null
    if args.path == "engine":
        from speech_reps.engine.job import Job  # imported before the clock starts, as Kaldi's binary is loaded
        from speech_reps.engine.run import featurize_data_dir
    marks = {"main": main_started}
    if args.path == "engine":
        marks["stages"] = time_stages(marks)
    if args.max_padding is not None:  # an A/B of the toolkit's default
        import speech_reps.defaults

        speech_reps.defaults.default_max_padding = lambda model, device: args.max_padding
    if args.path == "network":
        wall, frames, again = network_alone(args.model, options, args.data, args.batch_frames)
        print(json.dumps({"wall": wall, "frames": frames, "again": again}))
        return
    start = time.perf_counter()
    sampler = ThreadSampler() if args.path == "engine" and args.sample_threads else None
    if args.path == "engine":
        profiler = profiled() if args.profile else contextlib.nullcontext()
        with profiler as prof:
            # None: featurize.py's defaults for the model and device (speech_reps/defaults.py)
            summary = featurize_data_dir(Job(args.data, args.out, model=args.model, model_options=options,
                                             batch_frames=args.batch_frames, num_workers=args.num_workers,
                                             progress=False, data_copy=False, compress=args.compress == "true"))
        if args.profile:
            marks["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile)
        counts = Path(args.out) / "utt2num_frames"
        if not counts.exists():  # a layer sweep: the frames of one of its layers
            counts = sorted(Path(args.out).glob("layer*/utt2num_frames"))[0]
        frames = sum(int(line.split()[1]) for line in open(counts))
        padding = summary.padding.waste
    else:
        frames, padding = seed_style(args.model, options, args.data, args.out), None
    wall = time.perf_counter() - start
    gpu = None
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
            gpu = torch.cuda.max_memory_allocated()
    written = sum(p.stat().st_size for p in Path(args.out).glob("*.ark"))
    if sampler is not None:
        marks["threads"] = sampler.top()
    print(json.dumps({"wall": wall, "frames": frames, "padding": padding, "gpu_bytes": gpu, "bytes": written,
                      "end": time.time(), **marks}))


if __name__ == "__main__":
    main()
