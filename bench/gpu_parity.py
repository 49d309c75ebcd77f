"""``python -m bench.gpu_parity``: what a CUDA GPU does to the float32 contract, in numbers.

For every torch model at its published size (random weights in its own file format; ge2e its
real weights) on real speech (the golden utterances, cut to unequal lengths): max abs difference
of a batch against its utterances one by one on the GPU, and of the GPU against the CPU, in
float32 (TF32 off, the toolkit's default) and with --dtype tf32. Then the torch front end on the
GPU against the golden Kaldi outputs, by the golden tests' criteria. Prints markdown tables;
tests/gpu asserts the contract on the same functions.

Usage: python -m bench.gpu_parity [--models decoar,wav2vec,...] [--device cuda:0] [--work DIR]
"""

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "kaldi_golden"
GOLDEN_UTTS = ("spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short")
SPEECH_UTTS = ("spk1-utt1", "spk2-utt1")
MODELS = ("decoar", "wav2vec", "wav2vec2", "hubert", "decoar2", "ge2e")
SIZES = {"decoar": "4 x 1024 LSTM per direction", "wav2vec": "wav2vec_large",
         "wav2vec2": "base, group-norm extractor", "hubert": "base size, layer-norm extractor, pre-LN",
         "decoar2": "12 x 768 transformer", "ge2e": "real weights"}
SECONDS = (3.2, 1.3, 2.6, 0.7, 3.2, 2.0)  # one batch: unequal lengths, two equal
FBANK_CASES = {"fbank80": {"num-mel-bins": 80}, "fbank40": {"num-mel-bins": 40},
               "fbank80_energy": {"num-mel-bins": 80, "use-energy": True},
               "fbank80_nosnip": {"num-mel-bins": 80, "snip-edges": False}}


def speech_waves(seconds=SECONDS, rate=16000):
    """Real speech at int16 scale: the golden utterances end to end, cut at different offsets."""
    speech = np.concatenate([sf.read(GOLDEN / "wav" / f"{u}.wav", dtype="int16")[0] for u in SPEECH_UTTS])
    speech = np.tile(speech, 2).astype(np.float32)
    return [speech[int(0.37 * rate * i):int(0.37 * rate * i) + int(s * rate)] for i, s in enumerate(seconds)]


def write_checkpoints(directory, models=MODELS):
    """{model: create() options} with full-size random checkpoints under ``directory`` (kept:
    a file already there is reused)."""
    import argparse as ap

    import torch

    from bench.model_throughput import write_checkpoint

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    options = {}
    for model in models:
        path = directory / f"{model}.pt"
        if model == "ge2e":
            options[model] = {}
            continue
        if not path.is_file():
            if model in ("decoar", "wav2vec", "wav2vec2"):
                write_checkpoint(model, path)
            elif model == "hubert":  # the large models' layout (HuBERT large, wav2vec 2.0 lv60) at base size
                from speech_reps.models.wav2vec2 import DEFAULTS
                from speech_reps.models.wav2vec2_net import Wav2Vec2Net

                cfg = {**DEFAULTS, "extractor_mode": "layer_norm", "layer_norm_first": True, "conv_bias": True}
                net = Wav2Vec2Net(cfg)
                with torch.no_grad():
                    net.encoder.pos_conv[0].weight_v.normal_(0, 0.02)
                torch.save({"cfg": {"model": cfg, "task": {"normalize": True}}, "model": net.state_dict()}, path)
            elif model == "decoar2":
                from speech_reps.models.decoar2 import ARCHITECTURE
                from speech_reps.models.decoar2_net import DeCoAR2Net

                net = DeCoAR2Net({**ARCHITECTURE, "encoder_attention_heads": 12, "input_feat": 80})
                with torch.no_grad():  # its weight-normed v starts at zero: g * v / ||v|| would be NaN
                    net.encoder.pos_conv[0].weight_v.normal_(0, 0.02)
                torch.save({"model": net.state_dict(), "args": ap.Namespace(arch="decoar2")}, path)
            else:
                raise ValueError(f"gpu_parity: no checkpoint writer for {model}")
        options[model] = {"params": str(path)}
    return options


def model_inputs(featurizer, waves):
    """(inputs, num_samples) of ``waves`` for the model: fbank models get the CPU (native) front
    end's CMVN'd features, so the CPU and the GPU model see the same numbers."""
    from speech_reps.frontend import FrontEnd

    if featurizer.input == "fbank":
        frontend = FrontEnd(dataclasses.replace(featurizer.frontend, backend="native", device="cpu"))
        inputs = [frontend.normalise(f"u{i}", frontend.features(f"u{i}", w)) for i, w in enumerate(waves)]
        return inputs, [len(w) for w in waves]
    inputs = [featurizer.prepare_wave(w) for w in waves]
    return inputs, [len(x) for x in inputs]


def outputs(featurizer, inputs, num_samples, together=True):
    """The model's outputs as host arrays: all inputs in one batch, or one at a time."""
    from speech_reps.models.base import Batch
    from speech_reps.models.torch_device import host_array

    if together:
        out = featurizer.featurize(Batch([f"u{i}" for i in range(len(inputs))], inputs, num_samples))
    else:
        out = [featurizer.featurize(Batch(["u"], [x], [n]))[0] for x, n in zip(inputs, num_samples)]
    return [host_array(x) for x in out]


def max_diff(a, b):
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def model_parity(model, options, device, waves=None, dtypes=("float32", "tf32")):
    """{"scale": largest CPU output, dtype: (batched vs one by one on ``device``, ``device`` one
    by one vs the CPU in float32)} for one model."""
    import torch

    from speech_reps.models.registry import create

    waves = speech_waves() if waves is None else waves
    cpu = create(model, **options)
    inputs, num_samples = model_inputs(cpu, waves)
    reference = outputs(cpu, inputs, num_samples, together=False)
    del cpu
    result = {"scale": max(float(np.abs(r).max()) for r in reference)}
    for dtype in dtypes:
        gpu = create(model, **options, device=device, dtype=dtype)
        batched = outputs(gpu, inputs, num_samples)
        alone = outputs(gpu, inputs, num_samples, together=False)
        result[dtype] = (max_diff(batched, alone), max_diff(alone, reference))
        del gpu
        torch.cuda.empty_cache()
    return result


def golden(name):
    import kaldiio

    return dict(kaldiio.load_ark(str(GOLDEN / f"{name}.ark")))


def frontend_parity(device):
    """Rows (case, near-peak max, mean, overall max) of the torch front end on ``device``, one
    batch of the four golden utterances, against Kaldi's outputs. fbank: bins within 10 nats of
    their frame's peak (the golden tests' criterion: <= 1e-3, mean <= 1e-2); mfcc: unliftered
    cepstra, speech utterances (<= 1e-3); CMVN: speech utterances (<= 2e-3)."""
    from speech_reps.frontend import FeatureOptions, FrontEnd, FrontEndSpec

    waves = [sf.read(GOLDEN / "wav" / f"{u}.wav", dtype="int16")[0].astype(np.float32) for u in GOLDEN_UTTS]
    rows = []
    for case, overrides in FBANK_CASES.items():
        options = FeatureOptions.from_file("fbank", None, {"dither": 0, **overrides})
        ours = FrontEnd(FrontEndSpec(options, backend="torch", device=device)).features_batch(GOLDEN_UTTS, waves)
        kaldi = golden(case)
        near = [np.abs(o - kaldi[u])[kaldi[u] >= kaldi[u].max(axis=1, keepdims=True) - 10.0]
                for u, o in zip(GOLDEN_UTTS, ours)]
        rows.append((case, max(float(d.max()) for d in near),
                     max(float(np.abs(o - kaldi[u]).mean()) for u, o in zip(GOLDEN_UTTS, ours)),
                     max(float(np.abs(o - kaldi[u]).max()) for u, o in zip(GOLDEN_UTTS, ours))))
    options = FeatureOptions.from_file("mfcc", None, {"dither": 0})
    ours = FrontEnd(FrontEndSpec(options, backend="torch", device=device)).features_batch(GOLDEN_UTTS, waves)
    kaldi = golden("mfcc")
    lifter = 1.0 + 11.0 * np.sin(np.pi * np.arange(13) / 22.0)
    unliftered = {u: np.abs(o - kaldi[u]) / lifter for u, o in zip(GOLDEN_UTTS, ours)}
    rows.append(("mfcc (unliftered)", max(float(unliftered[u].max()) for u in SPEECH_UTTS),
                 max(float(d.mean()) for d in unliftered.values()),
                 max(float(np.abs(o - kaldi[u]).max()) for u, o in zip(GOLDEN_UTTS, ours))))
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 80})
    frontend = FrontEnd(FrontEndSpec(options, backend="torch", cmvn="utt", norm_vars=True, device=device))
    ours = frontend.features_batch(GOLDEN_UTTS, waves)
    kaldi = golden("fbank80_uttcmvn")
    speech = [float(np.abs(o - kaldi[u]).max()) for u, o in zip(GOLDEN_UTTS, ours) if u in SPEECH_UTTS]
    rows.append(("fbank80 + utterance CMVN", max(speech), None, max(speech)))
    return rows


def main():
    p = argparse.ArgumentParser(prog="python -m bench.gpu_parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--work", default=str(REPO / ".cache" / "gpu-check" / "checkpoints"))
    args = p.parse_args()
    import torch

    print(f"# GPU parity: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}\n")
    print("Max abs difference on real speech (6 utterances, 0.7-3.2 s, one batch): a batch against its "
          "utterances one by one on the GPU, and the GPU against the CPU's float32; float32 is the toolkit's "
          "default (TF32 off), tf32 is `--dtype tf32`\n")
    print("| model | output scale | batched vs one-by-one: float32 | tf32 | GPU vs CPU: float32 | tf32 "
          "| bfloat16 | float16 |")
    print("|---|---|---|---|---|---|---|---|")
    options = write_checkpoints(args.work, args.models.split(","))
    dtypes = ("float32", "tf32", "bfloat16", "float16")
    for model, opts in options.items():
        r = model_parity(model, opts, args.device, dtypes=dtypes)
        print(f"| {model} ({SIZES.get(model, '')}) | {r['scale']:.3g} | {r['float32'][0]:.2e} | {r['tf32'][0]:.2e} | "
              + " | ".join(f"{r[d][1]:.2e}" for d in dtypes) + " |", flush=True)
    print("\nTorch front end on the GPU against Kaldi (4 golden utterances in one batch):\n")
    print("| features | near-peak max (tests: <= 1e-3) | mean (<= 1e-2) | max over all bins |")
    print("|---|---|---|---|")
    for case, near, mean, worst in frontend_parity(args.device):
        print(f"| {case} | {near:.2e} | {'-' if mean is None else f'{mean:.2e}'} | {worst:.2e} |")


if __name__ == "__main__":
    main()
