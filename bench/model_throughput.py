#!/usr/bin/env python3
"""Model throughput: output frames per second on long utterances, batch 1 and batched.

Writes a checkpoint of the model's real published size with random weights (speed does not
depend on the values) in the model's own file format, loads it the way users do, and times the
front end and the model separately. Prints a markdown table.

TRILL's network cannot be rebuilt from its description, so ``--model trill`` times the
SavedModel given with ``--params`` (the real one: artifacts/trill_3, or the TF-Hub URL).

The batched row's utterances are unequal, as in real batches: from --seconds down to 10% less
(the most padding the length bucketer lets into a batch).

Usage: bench/model_throughput.py --model decoar|wav2vec|wav2vec2|trill [--params FILE] [--output O]
                                 [--device cpu|cuda:0] [--dtype float32] [--seconds 60] [--batch 8]
                                 [--repeats 2]
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"decoar": "4 x 1024 LSTM per direction, 40-dim fbank (67.2 M parameters)",
         "wav2vec": "wav2vec_large (7 conv encoder + 12 conv aggregator layers, 512 channels)",
         "wav2vec2": "wav2vec 2.0 base (12 x 768 transformer layers)",
         "trill": "the SavedModel given with --params"}


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=sorted(SIZES))
    p.add_argument("--params", default=None,
                   help="the weights to time (default: a full-size random checkpoint; trill: required)")
    p.add_argument("--output", default=None, help="trill: layer19 or embedding")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="torch models: float32, tf32, bfloat16, float16")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return p.parse_args(argv)


def batch_lengths(num_samples, batch):
    """``batch`` unequal lengths from ``num_samples`` down to 10% less, as the length bucketer
    makes them (never more than 10% padding in a batch)."""
    from speech_reps.engine.batching import MAX_PADDING

    return [num_samples - int(MAX_PADDING * num_samples * i / batch) for i in range(batch)]


def write_checkpoint(model, path):
    """A full-size checkpoint in the model's file format, random weights."""
    import argparse as ap

    import torch

    if model == "decoar":
        from speech_reps.models.decoar_checkpoint import expected_shapes

        rng = np.random.default_rng(0)
        state = {k.replace("proj.", "post_extract_proj."): torch.from_numpy(rng.uniform(-0.03, 0.03, s).astype(np.float32))
                 for k, s in expected_shapes(40, 1024, 4).items()}
        torch.save({"model": state}, path)
    elif model == "wav2vec":
        from speech_reps.models.wav2vec import DEFAULTS
        from speech_reps.models.wav2vec_net import Wav2VecNet

        args = {**DEFAULTS, "conv_feature_layers": "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), "
                                                   "(512, 4, 2), (512, 1, 1), (512, 1, 1)]"}
        torch.save({"args": ap.Namespace(**args), "model": Wav2VecNet(args).state_dict()}, path)
    else:
        from speech_reps.models.wav2vec2 import DEFAULTS
        from speech_reps.models.wav2vec2_net import Wav2Vec2Net

        net = Wav2Vec2Net(DEFAULTS)
        with torch.no_grad():
            net.encoder.pos_conv[0].weight_v.normal_(0, 0.02)
        torch.save({"cfg": {"model": DEFAULTS, "task": {"normalize": False}}, "model": net.state_dict()}, path)
    return path


def best_of(repeats, fn, device):
    import torch

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    args = get_args(argv)
    import torch

    from speech_reps.frontend import FrontEnd
    from speech_reps.models.base import Batch
    from speech_reps.models.registry import create

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "trill":
        model = create("trill", params=args.params, output=args.output, device=args.device)
    elif args.params:
        model = create(args.model, params=args.params, device=args.device, dtype=args.dtype)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = create(args.model, params=str(write_checkpoint(args.model, Path(tmp) / "model.ckpt")),
                           device=args.device, dtype=args.dtype)
    n = int(args.seconds * 16000)
    lengths = batch_lengths(n, args.batch)
    wave = (np.random.default_rng(1).standard_normal(n) * 3000).astype(np.float32)
    rows = []
    if model.input == "fbank":
        frontend = FrontEnd(model.frontend)
        prepare = lambda m: frontend.normalise("u", frontend.features("u", wave[:m]))  # noqa: E731
        t = best_of(args.repeats, lambda: prepare(n), args.device)
        rows.append(("front end (fbank + CMVN)", 1, model.num_frames(n) / t, args.seconds / t))
    else:
        prepare = lambda m: wave[:m]  # noqa: E731
    inputs = [prepare(m) for m in lengths]
    model.featurize(Batch(["w"], [inputs[-1][: len(inputs[-1]) // 20]], [lengths[-1] // 20]))  # warm-up
    t = best_of(args.repeats, lambda: model.featurize(Batch(["u"], inputs[:1], lengths[:1])), args.device)
    rows.append(("model", 1, model.num_frames(n) / t, args.seconds / t))
    batch = Batch([f"u{i}" for i in range(args.batch)], inputs, lengths)
    t = best_of(args.repeats, lambda: model.featurize(batch), args.device)
    rows.append(("model", args.batch, sum(model.num_frames(m) for m in lengths) / t, sum(lengths) / 16000 / t))

    dev = (torch.cuda.get_device_name() if args.device.startswith("cuda")
           else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads")
    size = SIZES[args.model] if args.model == "trill" or not args.params else args.params
    dtype = "" if args.model == "trill" else f"; {args.dtype}"
    print(f"{args.model}: {size}; {args.seconds:g} s utterances; {args.device} ({dev}){dtype}; "
          f"torch {torch.__version__}; best of {args.repeats}\n")
    print("| stage | batch | frames/s | x real time |")
    print("|---|---|---|---|")
    for stage, b, fps, xrt in rows:
        print(f"| {stage} | {b} | {fps:,.0f} | {xrt:.1f} |")
    return rows


if __name__ == "__main__":
    main()
