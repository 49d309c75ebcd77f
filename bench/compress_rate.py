"""Kaldi matrix compression rate, GB/s of float32 input on one thread: ours
(speech_reps.kaldi.compress) against kaldiio's, per method and number of rows.

Usage: python -m bench.compress_rate [--rows 100,1000] [--cols 2048] [--methods 1]
                                     [--repeats 5] [--kaldiio true]
e.g.:  OMP_NUM_THREADS=1 python -m bench.compress_rate --rows 100,1000 --methods 1,2,3,5

Input: tanh(N(0, 1.5)), DeCoAR-like, float32. Each rate is the best of --repeats timings
(the best is the least disturbed by other processes on a shared machine).
"""

import argparse
import io
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # single thread: the rate is per CPU core

import numpy as np  # noqa: E402

from speech_reps.kaldi.compress import compress  # noqa: E402


def get_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="100,1000")
    p.add_argument("--cols", type=int, default=2048)
    p.add_argument("--methods", default="1")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kaldiio", default="true", choices=("true", "false"))
    return p.parse_args()


def best_rate(fn, mat, repeats):
    """GB/s of float32 input, best of ``repeats`` (each at least 0.2 s of calls)."""
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn(mat)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= 0.2:
                break
        best = min(best, elapsed / calls)
    return mat.nbytes / best / 1e9


def kaldiio_compress(method):
    import kaldiio

    def fn(mat):
        kaldiio.save_ark(io.BytesIO(), {"x": mat}, compression_method=method)
    return fn


def main():
    args = get_args()
    rng = np.random.default_rng(0)
    print(f"| method | rows x cols | ours GB/s | kaldiio GB/s | ours / kaldiio |")
    print(f"|---|---|---|---|---|")
    for method in map(int, args.methods.split(",")):
        for rows in map(int, args.rows.split(",")):
            mat = np.tanh(rng.normal(0, 1.5, (rows, args.cols))).astype(np.float32)
            ours = best_rate(lambda m: compress(m, method), mat, args.repeats)
            if args.kaldiio == "true":
                theirs = best_rate(kaldiio_compress(method), mat, max(1, args.repeats // 2))
                print(f"| {method} | {rows} x {args.cols} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.1f} |")
            else:
                print(f"| {method} | {rows} x {args.cols} | {ours:.3f} | - | - |")


if __name__ == "__main__":
    main()
