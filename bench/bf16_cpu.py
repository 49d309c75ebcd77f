"""bfloat16 on this CPU: the toolkit's models in float32, in bfloat16 with oneDNN's own kernels,
and in bfloat16 with their matrix products in float32 on the bfloat16 values (what a CPU without
BF16 instructions runs: speech_reps/models/bf16_products.py), interleaved round after round on
the same utterances of the bench corpus, one utterance per call (the CPU default). Model time
only. Prints x real time (median round), and each bfloat16 output's error against float32 (mean
absolute difference over mean absolute value, all frames): the two bfloat16 ways must be alike.

Usage: python -m bench.bf16_cpu [--models wav2vec2,wav2vec,decoar] [--minutes 1] [--rounds 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]
MODELS = ("wav2vec2", "wav2vec", "decoar")  # full-size checkpoints bench.model_throughput writes
WAYS = ("float32", "bfloat16, oneDNN's kernels", "bfloat16, products in float32")


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    return p.parse_args(argv)


def build(model, way, tmp):
    """The featurizer of ``model`` the ``way`` (one of WAYS) says."""
    from bench.model_throughput import write_checkpoint
    from speech_reps.models import bf16_products
    from speech_reps.models.registry import create

    params = Path(tmp) / f"{model}.pt"
    if not params.exists():
        write_checkpoint(model, params)
    dtype = "float32" if way == WAYS[0] else "bfloat16"
    has_units = bf16_products.cpu_has_bf16_units
    if way == WAYS[1]:  # as a CPU with BF16 instructions is treated
        bf16_products.cpu_has_bf16_units = lambda: True
    try:
        return create(model, params=str(params), dtype=dtype)
    finally:
        bf16_products.cpu_has_bf16_units = has_units


def model_inputs(featurizer, data):
    from speech_reps.engine.inputs import InputReader, InputSpec
    from speech_reps.kaldi import DataDir

    reader = InputReader(InputSpec.for_model(featurizer))
    return [(item.utt.utt, item.input, item.num_samples) for item in map(reader.load, DataDir.load(data).utterances)]


def main(argv=None):
    args = get_args(argv)
    import torch

    from speech_reps.models import bf16_products
    from speech_reps.models.base import Batch

    data = make_corpus(Path(args.work) / f"corpus_{args.minutes:g}min", args.minutes)
    print(f"# bfloat16 on this CPU ({'with' if bf16_products.cpu_has_bf16_units() else 'without'} BF16 "
          f"instructions); torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.rounds} interleaved rounds, one utterance per call\n")
    print("| model | way | median s | x real time | vs float32 | error vs float32 |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            featurizers = {way: build(model, way, tmp) for way in WAYS}
            inputs = model_inputs(featurizers[WAYS[0]], data)
            audio = sum(n for _, _, n in inputs) / featurizers[WAYS[0]].sample_rate
            times, outputs = {way: [] for way in WAYS}, {}
            for featurizer in featurizers.values():  # warm-up
                featurizer.featurize(Batch([inputs[0][0]], [inputs[0][1]], [inputs[0][2]]))
            for _ in range(args.rounds):
                for way, featurizer in featurizers.items():
                    start = time.perf_counter()
                    outputs[way] = [np.asarray(featurizer.featurize(Batch([k], [x], [n]))[0], dtype=np.float32)
                                    for k, x, n in inputs]
                    times[way].append(time.perf_counter() - start)
            reference = np.concatenate(outputs[WAYS[0]])
            base = statistics.median(times[WAYS[0]])
            for way in WAYS:
                median = statistics.median(times[way])
                error = np.abs(np.concatenate(outputs[way]) - reference).mean() / np.abs(reference).mean()
                print(f"| {model} | {way} | {median:.2f} | {audio / median:.2f} | {base / median:.2f}x | "
                      f"{'-' if way == WAYS[0] else f'{error:.3%}'} |")


if __name__ == "__main__":
    main()
