"""``python -m bench``: throughput and memory of every path, on one generated corpus.

For each model: the toolkit's engine (loader workers, length buckets, writer thread) and the
seed-style path (one utterance at a time, batch 1, front end per file), measured in the same
run on the same audio, each in its own process (peak RSS is that process's). The seed-style
path always runs float32, as the seed did; --dtype applies to the engine. For fbank also
the torch front end. Prints markdown tables, plus this machine's sgemm rate and the fraction
of it DeCoAR reaches (134 MFLOP per 10 ms frame).

--peers: also what users would run instead, on the same audio, each peer that is installed
(bench/peers.py: Kaldi's compute-fbank-feats with KALDI_ROOT; lhotse and Hugging Face
transformers from `make bench-peers`), with ratios ours / peer; start-up is included on both sides.

Usage: python -m bench [--models fbank,decoar] [--minutes 10] [--device cpu|cuda:0] [--dtype float32]
                       [--num-workers N] [--batch-frames N] [--seed-style true] [--peers] [--work DIR]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from bench.corpus import make_corpus
from bench.measure import command as measure_command
from bench.peers import peer_rows

REPO = Path(__file__).resolve().parents[1]
# models whose full-size checkpoints the bench writes with random weights (model_throughput.py);
# every other declared model runs with its own weights (found under the artifacts location)
SYNTHETIC = ("decoar", "wav2vec", "wav2vec2", "hubert")


def bench_models():
    """Every declared model (models/declaration.py), and the bench's own ``null``."""
    from speech_reps.models.registry import documented_model_names

    return documented_model_names() + ["null"]
DECOAR_FLOPS_PER_FRAME = 134e6  # 2 x 67.1 M multiply-adds: projection + 2 x 4 LSTM layers of 1024


def get_args():
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="fbank,decoar", help=f"comma-separated, of {', '.join(bench_models())}")
    p.add_argument("--minutes", type=float, default=10.0, help="corpus size (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--num-workers", type=int, default=None,
                   help="engine loader workers (default: the toolkit's for the model and device)")
    p.add_argument("--batch-frames", type=int, default=None,
                   help="engine batch size (default: the toolkit's for the model and device)")
    p.add_argument("--seed-style", default="true", choices=("true", "false"))
    p.add_argument("--peers", action="store_true",
                   help="also the installed peers: Kaldi (KALDI_ROOT), lhotse and Hugging Face (make bench-peers)")
    p.add_argument("--fbank-backends", default="",
                   help="fbank: also the engine with each of these --fbank-backend values, e.g. native,torch")
    p.add_argument("--one-recording", action="store_true",
                   help="the corpus is a single recording of --minutes (bounded memory on long audio)")
    p.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    return p.parse_args()


def workers_text(num_workers):
    return "default" if num_workers is None else str(num_workers)


def sgemm_gflops(device="cpu", n=2048, repeats=10):
    import torch

    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def run(path, model, options, data, out, args, workers=None, compress=False):
    """One measurement in a child process: its JSON result plus its peak RSS (bytes)."""
    workers = args.num_workers if workers is None else workers
    cmd = measure_command(path, model, options, data, out, compress, workers, args.batch_frames)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    process = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"bench: {path} {model} failed:\n{stderr[-2000:]}", file=sys.stderr)
        return None
    result = json.loads(stdout.strip().splitlines()[-1])
    result["rss"] = usage.ru_maxrss * 1024
    result["process"] = process  # start to exit, start-up included (the peers' measure)
    return result


def model_options(model, args, tmp):
    from bench.model_throughput import write_checkpoint

    from speech_reps.models.registry import get_model_class

    declared = {o.name for o in get_model_class(model).spec.option_list()}
    options = {"device": args.device} if args.device != "cpu" else {}
    if model in ("fbank", "mfcc"):
        # the toolkit's options with dither 0, as the peers run (Kaldi's default dither is 1)
        conf = Path(tmp) / f"{model}.conf"
        conf.write_text((REPO / "conf" / f"{model}.conf").read_text() + "--dither=0\n")
        return {**options, "feature_config": str(conf)}
    if "dtype" in declared:
        options["dtype"] = args.dtype
    if model in SYNTHETIC:  # hubert: wav2vec2's network and file format
        options["params"] = str(write_checkpoint("wav2vec2" if model == "hubert" else model, Path(tmp) / f"{model}.pt"))
    return options


def raw_write_rate(directory, size, chunk=8 << 20, writeback=True):
    """Bytes per second of writing ``size`` bytes to a new file in ``directory``, fsynced at the
    end: the disk's own rate, for the same bytes the engine wrote (its archive is fsynced per batch).
    ``writeback``: each chunk's write-out to the disk started as it is written, as the engine's
    writer does (kaldi/writeback.py); without it the disk idles while the bytes go into memory,
    and the one fsync at the end waits for all of them (the rate of runs before 2026-11-28)."""
    import numpy as np

    from speech_reps.kaldi.writeback import start_writeback

    block = np.random.default_rng(0).integers(0, 256, chunk, dtype=np.uint8).tobytes()
    path = Path(directory) / "raw_write.bin"
    start = time.perf_counter()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            written = f.write(block[:min(chunk, left)])
            if writeback:
                f.flush()
                start_writeback(f.fileno(), size - left, written)
            left -= written
        f.flush()
        os.fsync(f.fileno())
    rate = size / (time.perf_counter() - start)
    path.unlink()
    return rate


def raw_write_rates(directory, size):
    """(plain, with write-out started): ``raw_write_rate`` both ways; the disk's ceiling is the
    higher one."""
    return raw_write_rate(directory, size, writeback=False), raw_write_rate(directory, size)


def data_path_rows(data, audio, args, tmp):
    """--model null: the engine's data path alone (no model cost), plain and compressed, against
    the raw write rate of the same bytes in the same run, both ways (``raw_write_rates``)."""
    print("## null (the data path alone: DeCoAR-sized output, 2048 x float32 per 10 ms, at no cost)\n\n"
          "| output | wall s | x real time | output GB/s | raw write of the same bytes, GB/s: "
          "fsync at the end / write-out started as written | data path / the higher raw |\n"
          "|---|---|---|---|---|---|")
    for compress in (False, True):
        result = run("engine", "null", {}, data, Path(tmp) / f"null_{compress}", args, compress=compress)
        if result is None:
            print(f"| {'compressed' if compress else 'float32'} | failed | | | | |")
            continue
        rate = result["bytes"] / result["wall"]
        plain, written_back = raw_write_rates(tmp, result["bytes"])
        print(f"| {'Kaldi compressed (method 1)' if compress else 'float32'} | {result['wall']:.1f} | "
              f"{audio / result['wall']:,.0f} | {rate / 1e9:.3f} | {plain / 1e9:.3f} / {written_back / 1e9:.3f} | "
              f"{100 * rate / max(plain, written_back):.0f}% |")
    print()


def row(label, result, audio_seconds, seed=None):
    if result is None:
        return f"| {label} | failed | | | | | | |"
    xrt = audio_seconds / result["wall"]
    gpu = f"{result['gpu_bytes'] / 2**30:.2f}" if result.get("gpu_bytes") else "-"
    padding = f"{100 * result['padding']:.1f}%" if result.get("padding") is not None else "-"
    ratio = f"{seed['wall'] / result['wall']:.2f}x" if seed else "-"
    return (f"| {label} | {result['wall']:.1f} | {xrt:,.1f} | {result['frames'] / result['wall']:,.0f} | "
            f"{result['rss'] / 2**30:.2f} | {gpu} | {padding} | {ratio} |")


def main():
    args = get_args()
    import torch

    models = [m for m in args.models.split(",") if m]
    known = bench_models()
    unknown = [m for m in models if m not in known]
    if unknown:
        raise SystemExit(f"bench: unknown model(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.one_recording:
        seconds = args.minutes * 60
        data = make_corpus(Path(args.work) / f"recording_{args.minutes:g}min", args.minutes, seconds, seconds)
    else:
        data = make_corpus(Path(args.work) / f"corpus_{args.minutes:g}min", args.minutes)
    audio = sum(sf.info(line.split()[1]).duration for line in (data / "wav.scp").read_text().splitlines())
    utts = len((data / "wav.scp").read_text().splitlines())
    device = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
              else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    gflops = sgemm_gflops(args.device)
    lengths = "one recording" if args.one_recording else "1-20 s each"
    print(f"# speech-reps benchmark: {utts} utterances, {audio / 60:.1f} min of audio ({lengths}); "
          f"{args.device} ({device}); torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"dtype {args.dtype}; engine: {workers_text(args.num_workers)} loader worker(s), "
          f"--batch-frames {args.batch_frames or 'default'}\n")
    print(f"sgemm (fp32 {2048}x{2048}, torch): {gflops:,.1f} GFLOP/s\n")
    header = ("| path | wall s | x real time | frames/s | peak RSS GB | GPU mem GB | padding | vs seed-style |\n"
              "|---|---|---|---|---|---|---|---|")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for model in models:
            if model == "null":
                data_path_rows(data, audio, args, tmp)
                continue
            options = model_options(model, args, tmp)
            print(f"## {model}\n\n{header}")
            seed = None
            if args.seed_style == "true":
                seed_options = {k: v for k, v in options.items() if k != "dtype"}  # the seed: float32
                seed = run("seed", model, seed_options, data, Path(tmp) / f"{model}_seed", args)
                print(row("seed-style (1 utterance at a time, batch 1, front end per file)", seed, audio))
            engine = run("engine", model, options, data, Path(tmp) / f"{model}_engine", args)
            print(row(f"engine ({workers_text(args.num_workers)} worker(s), "
                      f"--batch-frames {args.batch_frames or 'default'})", engine, audio, seed))
            if model == "fbank" and args.fbank_backends:
                for backend in args.fbank_backends.split(","):
                    result = run("engine", model, {**options, "backend": backend}, data,
                                 Path(tmp) / f"fbank_{backend}", args)
                    print(row(f"engine, `--fbank-backend {backend}`", result, audio, seed))
            if args.peers:
                print("\n".join(peer_rows(model, args.dtype, engine, data, audio, tmp, args.device)))
            if model == "decoar" and engine is not None:
                for label, r in (("seed-style", seed), ("engine", engine)):
                    if r is not None:
                        achieved = r["frames"] / r["wall"] * DECOAR_FLOPS_PER_FRAME / 1e9
                        print(f"\n{label}: DeCoAR at {achieved:,.1f} GFLOP/s = {100 * achieved / gflops:.0f}% "
                              f"of the measured sgemm rate", end="")
                print()
            print()


if __name__ == "__main__":
    main()
