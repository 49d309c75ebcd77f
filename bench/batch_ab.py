"""Batch size of a transformer on a busy CPU, measured interleaved: the toolkit's wav2vec2/HuBERT
at one utterance per call and in length-bucketed batches of --batch-frames, round after round
on the same utterances of the bench corpus, so that the load of other jobs on a shared machine
falls on every setting alike (a machine shared by several users moves a single run's time by
2x). Model time only (start-up excluded: the same for every setting). Prints the median and
best round of each setting and their ratio.

Usage: python -m bench.batch_ab [--model wav2vec2] [--dtype float32] [--minutes 1] [--rounds 3]
                                [--batch-frames 1,20000]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import soundfile as sf

from bench.corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wav2vec2", choices=("wav2vec2", "hubert"))
    p.add_argument("--dtype", default="float32")
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-frames", default="1,20000")
    p.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    import torch

    from bench.model_throughput import write_checkpoint
    from speech_reps.engine.batching import LengthBucketer
    from speech_reps.models.base import Batch
    from speech_reps.models.registry import create

    data = make_corpus(Path(args.work) / f"corpus_{args.minutes:g}min", args.minutes)
    waves = [(line.split()[0], sf.read(line.split()[1], dtype="float32")[0] * 32768)
             for line in (data / "wav.scp").read_text().splitlines()]
    audio = sum(len(w) for _, w in waves) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        model = create(args.model, params=str(write_checkpoint("wav2vec2", Path(tmp) / "m.pt")), dtype=args.dtype)
    sizes = [int(b) for b in args.batch_frames.split(",")]
    plans = {}
    for size in sizes:
        items = ((w, model.num_frames(len(w[1]))) for w in waves)
        plans[size] = [list(group) for group in LengthBucketer(size).batches(items)]
    times = {size: [] for size in sizes}
    model.featurize(Batch(["w"], [waves[0][1][:16000]], [16000]))  # warm-up
    for _ in range(args.rounds):
        for size in sizes:
            start = time.perf_counter()
            for group in plans[size]:
                model.featurize(Batch([u for u, _ in group], [w for _, w in group], [len(w) for _, w in group]))
            times[size].append(time.perf_counter() - start)
    base = statistics.median(times[sizes[0]])
    print(f"{args.model}, {args.dtype}: {len(waves)} utterances, {audio / 60:.1f} min; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.rounds} interleaved rounds\n")
    print(f"| --batch-frames | calls | median s | best s | x real time (median) | vs --batch-frames {sizes[0]} |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        median = statistics.median(times[size])
        print(f"| {size} | {len(plans[size])} | {median:.1f} | {min(times[size]):.1f} | {audio / median:.2f} | "
              f"{base / median:.2f}x |")
    return times


if __name__ == "__main__":
    main()
