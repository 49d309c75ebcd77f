"""``python -m bench.end_to_end``: whole jobs on one GPU, data dir to feats.ark/scp, on a corpus
of many hours, against the ceilings measured in the same run.

Each run is ``bench.measure`` in its own process (start-up included in "start-up to first
batch"), with the GPU's busy fraction sampled every 100 ms by ``nvidia-smi`` (the share of each
period in which a kernel ran), averaged from the first model call to the end of the run.

- DeCoAR, float32 and bfloat16: Kaldi-compressed (what featurize.sh writes by default) and
  float32 arks, the latter against the raw write rates of the same bytes (bench/__main__.py's
  ``raw_write_rates``: fsync at the end, and write-out started as written) in the same run.
- wav2vec 2.0 and HuBERT (random full-size weights): the engine against the model's calls alone
  on the same batches (``bench.measure --path network``), at the same dtype.
- fbank on the GPU (the torch front end), float32 arks.

The corpus is ``bench.corpus`` speech (--base-minutes of distinct audio) listed again under new
utterance ids up to --hours (the engine reads every copy from its file). A run that would not
finish within --run-timeout is cut short and reported. A probe of DeCoAR on one copy's worth
first sets the corpus size of the DeCoAR runs: --hours when the probe predicts each run within
its timeout, else what fits.

Usage: python -m bench.end_to_end [--device cuda:0] [--hours 10] [--base-minutes 30]
                                  [--runs decoar,fbank,wav2vec2,hubert,decoar-arks] [--budget S]
                                  [--work DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import soundfile as sf

from bench.__main__ import REPO, model_options, raw_write_rates
from bench.corpus import make_corpus
from bench.measure import command as measure_command


def get_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--hours", type=float, default=10.0, help="corpus size of the DeCoAR and fbank runs")
    p.add_argument("--transformer-hours", type=float, default=1.0, help="corpus size of wav2vec2/HuBERT")
    p.add_argument("--base-minutes", type=float, default=30.0, help="distinct audio, listed again up to --hours")
    p.add_argument("--runs", default="decoar,fbank,wav2vec2,hubert,decoar-arks",
                   help="decoar: compressed; decoar-arks: float32 arks, decoar-former: the batches before "
                        "the recurrent defaults (both after decoar, on its corpus)")
    p.add_argument("--run-timeout", type=float, default=60.0, help="seconds per run before it is cut short")
    p.add_argument("--budget", type=float, default=None, help="seconds for all runs; the runs left then are not run")
    p.add_argument("--num-workers", type=int, default=None, help="default: the toolkit's")
    p.add_argument("--fbank-workers", default="",
                   help="more fbank rows (float32 arks) with these loader-worker counts, e.g. 8,12: an A/B "
                        "of the default")
    p.add_argument("--work", default=str(REPO / ".cache" / "bench-e2e"))
    return p.parse_args(argv)


def replicated(data, hours, base_seconds, root):
    """A data dir listing ``data``'s utterances again (new ids) until ``hours`` of audio."""
    copies = max(1, round(hours * 3600 / base_seconds))
    out = Path(root) / f"replicated_{copies}x" / "data"
    if (out / "spk2utt").is_file():
        return out, copies
    out.mkdir(parents=True, exist_ok=True)
    lines = (data / "wav.scp").read_text().splitlines()
    scp = [f"r{k:03d}-{line}" for k in range(copies) for line in lines]  # sorted: k, then the id
    utts = [line.split()[0] for line in scp]
    (out / "wav.scp").write_text("".join(f"{line}\n" for line in scp))
    (out / "utt2spk").write_text("".join(f"{u} {u}\n" for u in utts))
    (out / "spk2utt").write_text("".join(f"{u} {u}\n" for u in utts))
    return out, copies


class GpuSampler:
    """nvidia-smi's utilization.gpu every 100 ms, with its timestamps, while a run goes on."""

    def __init__(self, index=0):
        self.samples = []  # (epoch seconds, percent)
        try:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", "100", "-i", str(index)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None
            return
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self._proc.stdout:
            try:
                stamp, percent = (x.strip() for x in line.split(","))
                self.samples.append((datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp(), float(percent)))
            except ValueError:
                continue

    def stop(self):
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
            self._thread.join(2)

    def busy(self, start, end):
        """Mean busy percent of the samples within [start, end] (None without samples)."""
        inside = [p for t, p in self.samples if start <= t <= end]
        return sum(inside) / len(inside) if inside else None


DEADLINE = [float("inf")]  # time.monotonic() by which every run has ended (--budget)
GPU_INDEX = [0]  # nvidia-smi's index of --device (without CUDA_VISIBLE_DEVICES remapping it)


def measure(path, model, options, data, out, timeout, compress=False, num_workers=None, extra=()):
    """One bench.measure child: its JSON (plus "started", "busy", "busy_all") or a reason.
    ``extra``: more bench.measure arguments (an A/B of a default)."""
    timeout = min(timeout, DEADLINE[0] - time.monotonic())
    if timeout < 5:
        return "not run: --budget spent"
    if path == "engine":
        extra = [*extra, "--sample-threads"]
    cmd = measure_command(path, model, options, data, out, compress, num_workers, extra=extra)
    sampler = GpuSampler(GPU_INDEX[0]) if path == "engine" else None
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"cut short after {timeout:.0f} s"
    finally:
        if sampler is not None:
            sampler.stop()
    if proc.returncode != 0:
        print(f"bench.end_to_end: {path} {model} failed:\n{stderr[-3000:]}", file=sys.stderr)
        return f"failed (exit {proc.returncode})"
    result = json.loads(stdout.strip().splitlines()[-1])
    result["started"] = started
    if sampler is not None and "first_batch" in result:
        result["busy"] = sampler.busy(result["first_batch"], result["end"])
        result["busy_all"] = sampler.busy(started, result["end"])
    return result


def pct(x):
    return "-" if x is None else f"{x:.0f}%"


def after_first_batch(result):
    """Seconds from the first model call to the end of the run."""
    return result["end"] - result["first_batch"]


THREAD_NOTES = []  # (run, {thread: [[label, share], ...]}) of the rows printed, for print_thread_notes


def print_thread_notes():
    """Where each run's threads were (bench.measure's ThreadSampler), after its table."""
    for label, threads in THREAD_NOTES:
        print(f"Threads of \"{label}\", sampled every 10 ms over the whole run (share of samples):")
        for name, top in threads.items():
            print(f"- {name}: " + "; ".join(f"{where} {100 * share:.0f}%" for where, share in top[:6]))
        print()
    THREAD_NOTES.clear()


def engine_row(label, result, audio):
    if isinstance(result, str):
        return f"| {label} | {result} | | | | | | | |"
    if result.get("threads"):
        THREAD_NOTES.append((label, result["threads"]))
    startup = result["first_batch"] - result["started"]
    phases = [result.get(k) for k in ("main", "imported", "checked")]
    if None not in phases:  # python and bench imports / engine imports / the job's check / to the first call
        marks = [result["started"], *phases, result["first_batch"]]
        startup = f"{startup:.1f} = " + " + ".join(f"{b - a:.1f}" for a, b in zip(marks, marks[1:]))
    else:
        startup = f"{startup:.1f}"
    steady = after_first_batch(result)
    st = result["stages"]
    main_thread = ("front_end", "model", "output", "queue")
    rest = steady - sum(st[k] for k in main_thread)
    stages = (" / ".join(f"{st[k]:.1f}" for k in main_thread) + f" / {rest:.1f} | "
              f"{st['writer']:.1f} ({st['device']:.1f})")
    return (f"| {label} | {result['wall']:.1f} | {audio / result['wall']:,.0f} | {audio / steady:,.0f} | "
            f"{result['bytes'] / result['wall'] / 1e9:.2f} | {startup} | "
            f"{pct(result.get('busy'))} ({pct(result.get('busy_all'))}) | "
            f"{(result.get('gpu_bytes') or 0) / 2**30:.1f} | "
            f"{stages} |")


HEADER = ("| run | wall s | x real time | x real time from the first batch | output GB/s | "
          "start-up to first batch, s (= python "
          "and imports + engine imports + job check, model loaded + to the first call) | "
          "GPU busy from the first batch (whole run) | GPU mem GB | main thread s: front end / model / output / "
          "writer queue / other (loader wait) | writer thread s (waiting for the GPU) |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    args = get_args(argv)
    import torch

    if args.budget is not None:
        DEADLINE[0] = time.monotonic() + args.budget
    if args.device.startswith("cuda:"):
        GPU_INDEX[0] = int(args.device.split(":")[1])
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = make_corpus(work / f"corpus_{args.base_minutes:g}min", args.base_minutes)
    base_seconds = sum(sf.info(line.split()[1]).duration for line in (base / "wav.scp").read_text().splitlines())
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else args.device
    print(f"# speech-reps end to end on {args.device} ({name}), {os.cpu_count()} CPUs; torch {torch.__version__}; "
          f"corpus: {base_seconds / 60:.1f} min of distinct audio (1-20 s utterances) listed again; "
          f"loader workers: {args.num_workers if args.num_workers is not None else 'default'}\n")
    runs = [r for r in args.runs.split(",") if r]
    out = work / "out"

    def fresh(tag):
        shutil.rmtree(out / tag, ignore_errors=True)
        return out / tag

    options_dir = work / "options"
    options_dir.mkdir(exist_ok=True)
    decoar = None  # (data dir, seconds of audio, options): set by the DeCoAR runs, for "decoar-arks"
    if "decoar" in runs:
        one, _ = replicated(base, base_seconds / 3600, base_seconds, work)  # one copy
        fp32 = model_options("decoar", argparse.Namespace(device=args.device, dtype="float32"), options_dir)
        probe = measure("engine", "decoar", fp32, one, fresh("probe"), args.run_timeout, True, args.num_workers)
        hours = args.hours
        if isinstance(probe, dict):  # the rate once started, and the start-up, predict a run's time
            rate = base_seconds / after_first_batch(probe)
            startup = probe["first_batch"] - probe["started"]
            fits = (0.8 * args.run_timeout - startup) * rate / 3600
            if fits < hours:
                hours = max(base_seconds / 3600, fits)
        data, copies = replicated(base, hours, base_seconds, work)
        audio = copies * base_seconds
        print(f"## DeCoAR (2048 x float32 per 10 ms), {audio / 3600:.1f} h ({copies} copies)\n\n{HEADER}")
        print(engine_row(f"probe: {base_seconds / 60:.0f} min, float32, compressed", probe, base_seconds))
        engines = {}
        for dtype in ("float32", "bfloat16"):
            options = {**fp32, "dtype": dtype}
            result = measure("engine", "decoar", options, data, fresh(f"decoar_{dtype}_c"), args.run_timeout, True,
                             args.num_workers)
            print(engine_row(f"{dtype}, `--compress true`", result, audio))
            shutil.rmtree(out / f"decoar_{dtype}_c", ignore_errors=True)
            engines[dtype] = result
        decoar = data, audio, fp32
        print()
        print_thread_notes()
        # the model's calls alone on one copy's batches (the same lengths as each copy's): how far
        # the engine's rate from its first batch is from the network's own
        rows = []
        for dtype, engine in engines.items():
            alone = measure("network", "decoar", {**fp32, "dtype": dtype}, one, fresh("decoar_net"), args.run_timeout)
            if isinstance(alone, str):
                rows.append(f"| {dtype} | {alone} | | |")
                continue
            steady = "" if isinstance(engine, str) else \
                f"{100 * (audio / after_first_batch(engine)) / (base_seconds / alone['wall']):.0f}%"
            rows.append(f"| {dtype} | {base_seconds / alone['wall']:,.0f} | {base_seconds / alone['again']:,.0f} | {steady} |")
        print("| DeCoAR dtype | the model's calls alone on one copy's batches (inputs in memory), x real time | "
              "the same calls again | engine from its first batch / alone |\n|---|---|---|---|")
        print("\n".join(rows) + "\n")
        # what the bfloat16 job's host does per batch (on one copy): the kernels its LSTMs run and
        # the calls that wait for the device, by torch's profiler
        profiled = measure("engine", "decoar", {**fp32, "dtype": "bfloat16"}, one, fresh("decoar_profile"),
                           args.run_timeout, True, args.num_workers, ["--profile", "15"])
        if isinstance(profiled, dict):
            print(f"DeCoAR bfloat16 on one copy under torch's profiler (its 15 busiest operators by host time):\n\n"
                  f"```\n{profiled['profile'].strip()}\n```\n")
        else:
            print(f"DeCoAR bfloat16 under torch's profiler: {profiled}\n")
    if "decoar-former" in runs and decoar is not None:
        # the batches DeCoAR had before its recurrent defaults (defaults.py): 1600 s, at most 10% padding
        data, audio, fp32 = decoar
        before = measure("engine", "decoar", {**fp32, "dtype": "bfloat16"}, data, fresh("decoar_before"),
                         args.run_timeout, True, args.num_workers,
                         ["--batch-frames", "160000", "--max-padding", "0.1"])
        print(f"## DeCoAR, the former batches, {audio / 3600:.1f} h\n\n{HEADER}")
        print(engine_row("bfloat16, `--compress true`, former batches (1600 s, padding <= 10%)", before, audio))
        shutil.rmtree(out / "decoar_before", ignore_errors=True)
        print()
        print_thread_notes()

    if "fbank" in runs:
        data, copies = replicated(base, args.hours, base_seconds, work)
        audio = copies * base_seconds
        options = model_options("fbank", argparse.Namespace(device=args.device, dtype="float32"), options_dir)
        print(f"## fbank (80 bins, torch front end on the GPU), {audio / 3600:.1f} h\n\n{HEADER}")
        for compress in (False, True):
            result = measure("engine", "fbank", options, data, fresh("fbank"), args.run_timeout, compress,
                             args.num_workers)
            print(engine_row("Kaldi-compressed arks" if compress else "float32 arks", result, audio))
        for workers in (int(n) for n in args.fbank_workers.split(",") if n):
            result = measure("engine", "fbank", options, data, fresh("fbank"), args.run_timeout, False, workers)
            print(engine_row(f"float32 arks, {workers} loader workers", result, audio))
        print()
        print_thread_notes()
    for model in ("wav2vec2", "hubert"):
        if model not in runs:
            continue
        data, copies = replicated(base, args.transformer_hours, base_seconds, work)
        audio = copies * base_seconds
        print(f"## {model} (base size, random weights), {audio / 3600:.1f} h\n\n{HEADER}")
        written = model_options(model, argparse.Namespace(device=args.device, dtype="float32"), options_dir)
        ratios = []
        for dtype in ("float32", "bfloat16"):
            options = {**written, "dtype": dtype}
            alone = measure("network", model, options, data, fresh(f"{model}_net"), args.run_timeout)
            engine = measure("engine", model, options, data, fresh(f"{model}_{dtype}"), args.run_timeout, True,
                             args.num_workers)
            print(engine_row(f"{dtype}, `--compress true`", engine, audio))
            again = "" if isinstance(alone, str) else f"{audio / alone['again']:,.0f}"
            if isinstance(engine, str) or isinstance(alone, str):
                alone_text = alone if isinstance(alone, str) else f"{audio / alone['wall']:,.0f}"
                ratios.append(f"| {dtype} | {alone_text} | {again} | | |")
                continue
            steady = after_first_batch(engine)
            ratios.append(f"| {dtype} | {audio / alone['wall']:,.0f} | {again} | "
                          f"{100 * alone['wall'] / steady:.0f}% | {100 * alone['wall'] / engine['wall']:.0f}% |")
        print("\n| dtype | the model's calls alone (same batches, inputs in memory), x real time | "
              "the same calls again (every batch shape seen before) | engine from its first "
              "batch / alone | engine, whole run / alone |\n|---|---|---|---|---|")
        print("\n".join(ratios) + "\n")
        print_thread_notes()
    if "decoar-arks" in runs and decoar is not None:
        data, audio, fp32 = decoar
        print(f"## DeCoAR, float32 arks, {audio / 3600:.1f} h\n\n{HEADER}")
        raw_rows = []
        for dtype in ("float32", "bfloat16"):
            options = {**fp32, "dtype": dtype}
            where = fresh(f"decoar_{dtype}")
            result = measure("engine", "decoar", options, data, where, args.run_timeout, False, args.num_workers)
            print(engine_row(f"{dtype}, float32 arks", result, audio))
            shutil.rmtree(where, ignore_errors=True)
            if isinstance(result, dict):
                plain, written_back = raw_write_rates(out, result["bytes"])
                rate = result["bytes"] / result["wall"]
                raw_rows.append(f"| {dtype} | {result['bytes'] / 1e9:.1f} | {rate / 1e9:.2f} | {plain / 1e9:.2f} / "
                                f"{written_back / 1e9:.2f} | {100 * rate / max(plain, written_back):.0f}% |")
        print("\n| DeCoAR float32 arks | GB written | engine GB/s | raw write of the same bytes, GB/s: fsync "
              "at the end / write-out started as written | engine / the higher raw |\n"
              "|---|---|---|---|---|")
        print("\n".join(raw_rows) + "\n")
        print_thread_notes()
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
