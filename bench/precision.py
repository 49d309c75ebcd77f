"""``python -m bench.precision``: the error of --dtype tf32 / bfloat16 / float16 against float32, on
real speech (the golden utterances), for full-size models (random weights in the original file
formats; ge2e with its real pretrained weights). Prints a markdown table. (tf32 differs from
float32 on a GPU only.)

Usage: python -m bench.precision [--models decoar,wav2vec2,ge2e] [--device cpu|cuda:0]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEECH = [REPO / "tests" / "data" / "kaldi_golden" / "wav" / f"{u}.wav" for u in ("spk1-utt1", "spk2-utt1")]


def main():
    p = argparse.ArgumentParser(prog="python -m bench.precision", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="decoar,wav2vec,wav2vec2,ge2e")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    from bench.model_throughput import write_checkpoint
    from speech_reps.engine.run import FileFeaturizer

    print(f"Max abs error against float32 on {len(SPEECH)} real speech utterances ({args.device}); "
          "in brackets: relative to the largest float32 output value\n")
    print("| model | tf32 | bfloat16 | float16 |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            options = {"device": args.device}
            if model != "ge2e":
                options["params"] = str(write_checkpoint(model, Path(tmp) / f"{model}.pt"))
            reference = [FileFeaturizer(model, options)(w) for w in SPEECH]
            scale = max(np.abs(r).max() for r in reference)
            cells = []
            for dtype in ("tf32", "bfloat16", "float16"):
                featurizer = FileFeaturizer(model, {**options, "dtype": dtype})
                error = max(np.abs(featurizer(w) - r).max() for w, r in zip(SPEECH, reference))
                cells.append(f"{error:.2e} ({error / scale:.1e})")
            print(f"| {model} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
