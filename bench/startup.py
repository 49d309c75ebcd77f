"""``python -m bench.startup``: where a GPU job's start-up goes, part by part, each part in a
fresh process as a job meets it: Python itself, the engine's imports, torch's import, CUDA's
start (the context on the device), a model made and loaded there (DeCoAR, full size, random
weights), and the loader workers' start (spawned, imported, the first utterance read).

In a job the loader workers start while torch is imported and the model loads (engine/prefetch.py,
``Loaders``), so their part is off its path. The whole jobs of ``python -m bench.end_to_end``
report start-up to the first batch as one
column; this says which part to cut.

Usage: python -m bench.startup [--device cuda:0] [--num-workers 4] [--repeats 2]
"""

import argparse
import subprocess
import sys
import time

from bench.__main__ import REPO

PARTS = {  # name -> the code timed (after the imports of the parts before it, untimed)
    "python (nothing imported)": ("", "pass"),
    "engine imports (speech_reps.engine.run)": ("", "import speech_reps.engine.run"),
    "torch import": ("import speech_reps.engine.run", "import torch"),
    "CUDA start (a tensor on the device)": ("import torch", "torch.zeros(1, device=DEVICE); SYNC()"),
    "DeCoAR made and loaded on the device": (
        "import torch; torch.zeros(1, device=DEVICE)\n"
        "from bench.__main__ import model_options\n"
        "import argparse, tempfile\n"
        "from speech_reps.models.registry import create\n"
        "opts = model_options('decoar', argparse.Namespace(device=DEVICE, dtype='float32'), tempfile.mkdtemp())",
        "create('decoar', **opts); SYNC()"),
    "loader workers started, first utterance read": (
        "from bench.corpus import make_corpus\n"
        "from speech_reps.kaldi import DataDir\n"
        "from speech_reps.engine.inputs import InputSpec\n"
        "from speech_reps.engine.prefetch import read_ahead\n"
        "data = DataDir.load(make_corpus(REPO / '.cache' / 'bench' / 'corpus_2min', 2))\n"
        "spec = InputSpec(16000, int16_waves=True)",
        "stream = read_ahead(data.utterances, spec, WORKERS); next(stream); stream.close()"),
}


def timed(setup, code, device, workers):
    program = (f"import time\nfrom pathlib import Path\nREPO = Path({str(REPO)!r})\nDEVICE = {device!r}\n"
               f"WORKERS = {workers}\n"
               "def SYNC():\n    import torch\n    torch.cuda.synchronize(DEVICE) if DEVICE.startswith('cuda') else None\n"
               f"{setup}\nt = time.perf_counter()\n{code}\n"
               "print(time.perf_counter() - t)\n")
    start = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "over 120 s"
    wall = time.perf_counter() - start
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
    return float(out.stdout.strip().splitlines()[-1]), wall


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--num-workers", type=int, default=None, help="default: the toolkit's for a model on --device")
    p.add_argument("--repeats", type=int, default=2, help="best of")
    args = p.parse_args(argv)
    if args.num_workers is None:
        from speech_reps.defaults import default_num_workers

        args.num_workers = default_num_workers("decoar", args.device)
    print(f"# start-up, part by part, on {args.device}; best of {args.repeats}; each part in a fresh process; "
          f"{args.num_workers} loader workers\n")
    print("| part | seconds |\n|---|---|")
    for name, (setup, code) in PARTS.items():
        if name.startswith("python"):
            results = [timed("", "pass", args.device, args.num_workers) for _ in range(args.repeats)]
            walls = [wall for seconds, wall in results if seconds is not None]
            shown = f"{min(walls):.2f}" if walls else f"failed: {results[0][1]}"
            print(f"| {name}: the whole process | {shown} |", flush=True)
            continue
        results = [timed(setup, code, args.device, args.num_workers) for _ in range(args.repeats)]
        seconds = [r[0] for r in results if r[0] is not None]
        shown = f"{min(seconds):.2f}" if seconds else f"failed: {results[0][1]}"
        print(f"| {name} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
