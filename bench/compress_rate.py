"""Kaldi matrix compression rate, GB/s of float32 input on one thread: ours
(speech_reps.kaldi.compress) against kaldiio's, per method and number of rows; and the same
algorithm on torch (compress_on_device): on the CPU, and on a CUDA GPU when there is one.

Usage: python -m bench.compress_rate [--rows 100,1000] [--cols 2048] [--methods 1]
                                     [--repeats 5] [--kaldiio true] [--torch true]
                                     [--device cuda:0] [--clock cpu]
e.g.:  OMP_NUM_THREADS=1 python -m bench.compress_rate --rows 100,1000 --methods 1,2,3,5
       python -m bench.compress_rate --methods 1,2 --kaldiio false --device cuda:0

Input: tanh(N(0, 1.5)), DeCoAR-like, float32. Each rate is the best of --repeats timings, each
of at least 0.2 s of calls (the best is the least disturbed by other processes on a shared
machine). --clock cpu times the CPU rows by this process's CPU time (one thread: what one core
does while it runs, without the turns other processes take on a shared machine); wall by the
clock. GPU rows are always wall-clock time, input on the GPU, bytes on the host.

Rows: ``compiled`` (an array: the compiled per-column kernels, speech_reps/kaldi/_compress_kernels.c,
where they were built); ``numpy`` (the same without them: what an install without a C compiler
runs); ``torch cpu`` (a CPU tensor: an array's path on its memory, no copy);
``torch kernels, cpu`` (compress_on_device on a CPU tensor: the GPU's algorithm, here only for
comparison, torch's CPU sort is slow); ``torch <cuda device>`` (compress on the GPU).
"""

import argparse
import io
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # single thread: the rate is per CPU core

import numpy as np  # noqa: E402

from speech_reps.kaldi import compress as compress_module  # noqa: E402
from speech_reps.kaldi.compress import compress, compress_on_device  # noqa: E402


def numpy_only(fn):
    """``fn`` run without the compiled kernels."""
    def run():
        kernels, compress_module._kernels = compress_module._kernels, None
        try:
            fn()
        finally:
            compress_module._kernels = kernels
    return run


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="100,1000")
    p.add_argument("--cols", type=int, default=2048)
    p.add_argument("--methods", default="1")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kaldiio", default="true", choices=("true", "false"))
    p.add_argument("--torch", default="true", choices=("true", "false"),
                   help="also the torch rows (CPU tensors; --device when CUDA is there)")
    p.add_argument("--device", default="cuda:0", help="the GPU of the torch rows ('none': CPU only)")
    p.add_argument("--clock", default="cpu", choices=("cpu", "wall"))
    return p.parse_args(argv)


def best_rate(fn, nbytes, repeats, clock=time.perf_counter):
    """GB/s of ``nbytes`` of float32 input per call of ``fn``, best of ``repeats`` (each at
    least 0.2 s of calls by ``clock``)."""
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, clock()
        while True:
            fn()
            calls += 1
            elapsed = clock() - start
            if elapsed >= 0.2:
                break
        best = min(best, elapsed / calls)
    return nbytes / best / 1e9


def kaldiio_compress(method):
    import kaldiio

    def fn(mat):
        kaldiio.save_ark(io.BytesIO(), {"x": mat}, compression_method=method)
    return fn


def _cuda_device(name):
    if name == "none":
        return None
    import torch
    return name if torch.cuda.is_available() else None


def main(argv=None):
    args = get_args(argv)
    cpu_clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    torch = device = None
    if args.torch == "true":
        import torch
        torch.set_num_threads(1)
        device = _cuda_device(args.device)
        if device is None and args.device != "none":
            print(f"(no CUDA device {args.device}: the GPU rows are left out)")
    print("| path | method | rows x cols | ours GB/s | kaldiio GB/s | ours / kaldiio |")
    print("|---|---|---|---|---|---|")
    for method in map(int, args.methods.split(",")):
        for rows in map(int, args.rows.split(",")):
            mat = np.tanh(rng.normal(0, 1.5, (rows, args.cols))).astype(np.float32)
            shape = f"{rows} x {args.cols}"
            ours = best_rate(lambda: compress(mat, method), mat.nbytes, args.repeats, cpu_clock)
            plain = best_rate(numpy_only(lambda: compress(mat, method)), mat.nbytes, args.repeats,
                              cpu_clock)
            theirs = None
            if args.kaldiio == "true":
                fn = kaldiio_compress(method)
                theirs = best_rate(lambda: fn(mat), mat.nbytes, max(1, args.repeats // 2), cpu_clock)
            for name, rate in (("compiled" if compress_module._kernels else "numpy (not built)", ours),
                               ("numpy", plain)):
                ratio = f"{theirs:.3f} | {rate / theirs:.1f}" if theirs else "- | -"
                print(f"| {name} | {method} | {shape} | {rate:.3f} | {ratio} |")
            if torch is None:
                continue
            t = torch.from_numpy(mat)
            rate = best_rate(lambda: compress(t, method), mat.nbytes, args.repeats, cpu_clock)
            print(f"| torch cpu (the array's path) | {method} | {shape} | {rate:.3f} | - | - |")
            rate = best_rate(lambda: compress_on_device(t, method), mat.nbytes, 1, cpu_clock)
            print(f"| torch kernels, cpu | {method} | {shape} | {rate:.3f} | - | - |")
            if device is not None:
                on_gpu = t.to(device)
                assert compress(on_gpu, method).tobytes() == compress(mat, method).tobytes()
                rate = best_rate(lambda: compress(on_gpu, method), mat.nbytes, args.repeats)
                print(f"| torch {device} ({torch.cuda.get_device_name(device)}) | {method} | {shape} "
                      f"| {rate:.3f} | - | - |")


if __name__ == "__main__":
    main()
