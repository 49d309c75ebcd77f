"""Reference BERTphone outputs from GluonNLP/MXNet (runs in the GluonNLP parity venv, not in .venv).

Builds BERTphone as the original toolkit does — GluonNLP 0.8's BERTEncoder (bert_12_768_12:
learned positions up to 512, BERT layer norms, GELU, post-LN cells) behind a Dense input layer,
in a Block named with prefix 'OpenSpeechModel_' whose children are created outside its name
scope (so their parameters are named bertencoder0_..., dense0_...) — initialises it with seeded
random weights, saves it both ways Gluon can, and runs it on the given stacked MFCC:
  legacy.params      collect_params().save: the names the original featurizer loads
                     (collect_params().load(file, ignore_extra=True))
  structural.params  Block.save_parameters (embed.weight, encoder.transformer_cells.0...)
  outputs.npz        <utt>: each utterance alone; batched/<utt>: all in one padded batch
                     with valid_length; layer1/<utt>, layer6/<utt>: cells 1 and 6 alone

With --kaldi-mfcc the inputs are raw MFCC matrices (real Kaldi's compute-mfcc-feats output): the
front end's last two steps are done here, independently of speech_reps, as the original
featurizer does them — apply-cmvn --norm-vars=true with the utterance's own stats (Kaldi's
arithmetic: double-precision sums, variance = E[x^2] - mean^2, floored at 1e-10) and its
``transform``, which stacks 3 frames (edge-padding 1 frame at both ends when T mod 3 == 1, at
the start when T mod 3 == 2; row i = padded frames 3i, 3i+1, 3i+2). Only legacy.params and
outputs.npz <utt> (and input/<utt>, the stacked CMVN'd MFCC) are written then.

Usage: python bertphone_gluonnlp_reference.py --inputs in.npz --out-dir DIR [--layers 12 --units 768]
       python bertphone_gluonnlp_reference.py --inputs mfcc.npz --kaldi-mfcc --out-dir DIR
"""

import argparse
import os
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import mxnet as mx  # noqa: E402
from gluonnlp.model.bert import BERTEncoder  # noqa: E402
from mxnet.gluon import Block, nn  # noqa: E402


class BERTphoneReference(Block):
    """Dense(in -> units) then the BERT encoder, NTC layout."""

    def __init__(self, units, hidden, heads, layers, max_length, **kwargs):
        super().__init__(**kwargs)
        # outside self.name_scope(), as in the original: global names bertencoder0_, dense0_
        self.encoder = BERTEncoder(attention_cell="multi_head", num_layers=layers, units=units,
                                   hidden_size=hidden, max_length=max_length, num_heads=heads,
                                   scaled=True, dropout=0.1, use_residual=True,
                                   output_attention=False, output_all_encodings=False)
        self.embed = nn.Dense(units, flatten=False)

    def forward(self, x, valid_length):
        out, _ = self.encoder(self.embed(x), states=None, valid_length=valid_length)
        return out


def apply_cmvn(feats):
    """apply-cmvn --norm-vars=true with the utterance's compute-cmvn-stats."""
    x = feats.astype(np.float64)
    mean = x.sum(axis=0) / len(x)
    var = np.maximum((x * x).sum(axis=0) / len(x) - mean * mean, 1e-10)
    return ((x - mean) / np.sqrt(var)).astype(np.float32)


def stack3(feats):
    """The original featurizer's transform: ceil(T/3) rows of 3 edge-padded frames side by side."""
    pad = [(0, 0), (1, 1), (1, 0)][len(feats) % 3]
    padded = np.concatenate([feats[:1]] * pad[0] + [feats] + [feats[-1:]] * pad[1])
    return np.concatenate([padded[0::3], padded[1::3], padded[2::3]], axis=1).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--units", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=4321)
    p.add_argument("--kaldi-mfcc", action="store_true", help="inputs are raw MFCC: CMVN and stack here")
    args = p.parse_args()

    inputs = dict(np.load(args.inputs))
    if args.kaldi_mfcc:
        inputs = {key: stack3(apply_cmvn(mfcc)) for key, mfcc in inputs.items()}
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    model = BERTphoneReference(args.units, 4 * args.units, args.heads, args.layers, args.max_length,
                               prefix="OpenSpeechModel_")
    model.initialize(mx.init.Normal(0.02))
    # Non-trivial biases and layer-norm parameters, so a dropped or swapped one shows.
    for name, param in model.collect_params().items():
        if name.endswith(("bias", "beta")):
            param.set_data(mx.nd.random.uniform(-0.1, 0.1, shape=param.shape))
        elif name.endswith("gamma"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))
    first = next(iter(inputs.values()))
    model(mx.nd.array(first[None]), mx.nd.array([len(first)]))  # deferred shapes
    os.makedirs(args.out_dir, exist_ok=True)
    model.collect_params().save(os.path.join(args.out_dir, "legacy.params"))
    outputs = {}
    with mx.autograd.predict_mode():
        for key, feats in inputs.items():
            outputs[key] = model(mx.nd.array(feats[None]), mx.nd.array([len(feats)]))[0].asnumpy()
    if args.kaldi_mfcc:  # with the inputs made here, to check the front end on its own
        outputs.update({f"input/{key}": feats for key, feats in inputs.items()})
        np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
        return
    model.save_parameters(os.path.join(args.out_dir, "structural.params"))
    with mx.autograd.predict_mode():
        keys = list(inputs)
        lengths = [len(inputs[k]) for k in keys]
        padded = np.zeros((len(keys), max(lengths), first.shape[1]), dtype=np.float32)
        for i, k in enumerate(keys):
            padded[i, :lengths[i]] = inputs[k]
        batched = model(mx.nd.array(padded), mx.nd.array(lengths)).asnumpy()
        for i, k in enumerate(keys):
            outputs[f"batched/{k}"] = batched[i, :lengths[i]]
        model.encoder._output_all_encodings = True  # every cell's output, for --layer
        for key, feats in inputs.items():
            layers = model(mx.nd.array(feats[None]), mx.nd.array([len(feats)]))
            outputs[f"layer1/{key}"], outputs[f"layer6/{key}"] = layers[0][0].asnumpy(), layers[5][0].asnumpy()
    np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
    print(f"mxnet {mx.__version__}: {len(inputs)} utterances, {args.layers} layers, {args.units} units")


if __name__ == "__main__":
    main()
