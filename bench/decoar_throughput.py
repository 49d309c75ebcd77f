#!/usr/bin/env python3
"""DeCoAR throughput: frames per second on 60 s utterances, batch 1 and batched.

Builds a full-size DeCoAR (40-dim fbank, 4 x 1024 LSTMs, random weights: speed does not depend
on the values) and times the Kaldi front end (fbank + CMVN) and the encoder separately.
Prints a markdown table.

Usage: bench/decoar_throughput.py [--device cpu|cuda:0] [--seconds 60] [--batch 8] [--repeats 3]
"""

import argparse
import platform
import time

import numpy as np


def get_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return p.parse_args()


def build_model(device):
    from speech_reps.frontend import FeatureOptions, FrontEndSpec
    from speech_reps.models.decoar import DeCoAR
    from speech_reps.models.decoar_checkpoint import expected_shapes
    from speech_reps.models.torch_device import resolve_device

    rng = np.random.default_rng(0)
    weights = {k: rng.uniform(-0.03, 0.03, s).astype(np.float32)
               for k, s in expected_shapes(40, 1024, 4).items()}
    options = FeatureOptions.from_file("fbank", None, {"num-mel-bins": 40, "dither": 0})
    return DeCoAR(weights, (40, 1024, 4), FrontEndSpec(options, cmvn="utt", norm_vars=True), resolve_device(device))


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if "cuda" in DEVICE:
            import torch
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    global DEVICE
    args = get_args()
    DEVICE = args.device
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from speech_reps.frontend import FrontEnd
    from speech_reps.models.base import Batch

    model = build_model(args.device)
    frontend = FrontEnd(model.frontend)
    n = int(args.seconds * 16000)
    wave = (np.random.default_rng(1).standard_normal(n) * 3000).astype(np.float32)
    feats = frontend.normalise("u", frontend.features("u", wave))
    frames = len(feats)
    model.featurize(Batch(["w"], [feats[:200]], [0]))  # warm-up

    rows = []
    t = best_of(args.repeats, lambda: frontend.normalise("u", frontend.features("u", wave)))
    rows.append(("front end: fbank40 + CMVN", 1, frames / t, args.seconds / t))
    t = best_of(args.repeats, lambda: model.featurize(Batch(["u"], [feats], [n])))
    rows.append(("encoder", 1, frames / t, args.seconds / t))
    lengths = [frames - 37 * i for i in range(args.batch)]  # unequal lengths, as in real batches
    batch = Batch([f"u{i}" for i in range(args.batch)], [feats[:m] for m in lengths], [n] * args.batch)
    t = best_of(args.repeats, lambda: model.featurize(batch))
    rows.append(("encoder", args.batch, sum(lengths) / t, sum(lengths) / 100 / t))

    dev = torch.cuda.get_device_name() if "cuda" in args.device else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"DeCoAR 4x1024, {args.seconds:g} s utterances, device {args.device} ({dev}), torch {torch.__version__}, best of {args.repeats}\n")
    print("| stage | batch | frames/s | x real time |")
    print("|---|---|---|---|")
    for stage, b, fps, xrt in rows:
        print(f"| {stage} | {b} | {fps:,.0f} | {xrt:.1f} |")


if __name__ == "__main__":
    main()
