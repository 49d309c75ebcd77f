"""``python -m bench.layer_sweep``: what a layer sweep costs against one single-layer run.

wav2vec 2.0 base (12 x 768, random weights: speed does not depend on the values) over the
bench corpus: ``--layer 12`` alone, then ``--layer 4,8,12`` (three outputs from one forward
pass), then layers 4 and 8 alone (what the sweep saves: the three single runs together), each
with the engine in its own process (peak RSS is that process's).

Usage: python -m bench.layer_sweep [--minutes 2] [--layers 4,8,12] [--device cpu] [--work DIR]
"""

import argparse
import tempfile
from pathlib import Path

import soundfile as sf

from bench.__main__ import REPO, run
from bench.corpus import make_corpus
from bench.model_throughput import write_checkpoint


def get_args():
    p = argparse.ArgumentParser(prog="python -m bench.layer_sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--layers", default="4,8,12")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--batch-frames", type=int, default=20000)
    p.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    return p.parse_args()


def main():
    args = get_args()
    layers = [int(x) for x in args.layers.split(",")]
    data = make_corpus(Path(args.work) / f"corpus_{args.minutes:g}min", args.minutes)
    audio = sum(sf.info(line.split()[1]).duration for line in (data / "wav.scp").read_text().splitlines())
    Path(args.work).mkdir(parents=True, exist_ok=True)
    print(f"# layer sweep: wav2vec2 base, {audio / 60:.1f} min of audio, {args.device}\n")
    print("| run | wall s | x real time | peak RSS GB | vs one layer |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        base = {"params": str(write_checkpoint("wav2vec2", Path(tmp) / "wav2vec2.pt"))}
        if args.device != "cpu":
            base["device"] = args.device
        runs = [(f"--layer {layers[-1]}", layers[-1]), (f"--layer {args.layers}", layers)]
        runs += [(f"--layer {n}", n) for n in layers[:-1]]
        single, singles = None, 0.0
        for i, (label, layer) in enumerate(runs):
            result = run("engine", "wav2vec2", {**base, "layer": layer}, data, Path(tmp) / f"run{i}", args)
            if result is None:
                print(f"| {label} | failed | | | |")
                continue
            single = single or result["wall"]
            singles += result["wall"] if not isinstance(layer, list) else 0.0
            print(f"| {label} | {result['wall']:.1f} | {audio / result['wall']:,.1f} | "
                  f"{result['rss'] / 2**30:.2f} | {result['wall'] / single:.2f}x |")
        print(f"\nthe {len(layers)} single-layer runs together: {singles:.1f} s")


if __name__ == "__main__":
    main()
