"""Reference DeCoAR outputs from MXNet Gluon (runs in the MXNet parity venv, not in .venv).

Defines the DeCoAR encoder block from the published architecture (Dense projection, then
separate forward and backward unidirectional LSTMs, the backward one on the reversed input),
initialises it with seeded random weights, saves it both ways, and runs it utterance by
utterance on the given CMVN'd fbank:
  structural.params  Block.save_parameters (MXNet 1.9 names: encoder.weight,
                     rnn_forward._unfused.0.i2h_weight, ...)
  legacy.params      collect_params().save (decoar0_dense0_weight, decoar0_lstm0_l0_i2h_weight, ...)
  outputs.npz        per utterance, the (T, 2H) output

Usage: python decoar_mxnet_reference.py --inputs in.npz --out-dir DIR [--hidden 1024 --layers 4]
"""

import argparse
import os

import numpy as np

import mxnet as mx
from mxnet import gluon
from mxnet.gluon import nn, rnn


class DeCoAR(gluon.HybridBlock):
    def __init__(self, input_dim, hidden, layers, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = nn.Dense(hidden, in_units=input_dim, flatten=False)
            self.rnn_forward = rnn.LSTM(hidden, layers, layout="NTC", input_size=hidden)
            self.rnn_backward = rnn.LSTM(hidden, layers, layout="NTC", input_size=hidden)

    def hybrid_forward(self, F, x):
        h = self.encoder(x)
        forward = self.rnn_forward(h)
        backward = F.reverse(self.rnn_backward(F.reverse(h, axis=1)), axis=1)
        return F.concat(forward, backward, dim=2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args()

    inputs = dict(np.load(args.inputs))
    input_dim = next(iter(inputs.values())).shape[1]
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    model = DeCoAR(input_dim, args.hidden, args.layers, prefix="decoar0_")
    bound = 1.0 / np.sqrt(args.hidden)
    model.initialize(mx.init.Uniform(bound))
    # Non-zero biases, so a dropped or swapped bias cannot go unnoticed.
    for name, param in model.collect_params().items():
        if name.endswith("bias"):
            param.set_data(mx.nd.random.uniform(-bound, bound, shape=param.shape))
    os.makedirs(args.out_dir, exist_ok=True)
    model.save_parameters(os.path.join(args.out_dir, "structural.params"))
    model.collect_params().save(os.path.join(args.out_dir, "legacy.params"))

    outputs = {}
    for key, feats in inputs.items():
        x = mx.nd.array(feats[None].astype(np.float32))
        outputs[key] = model(x)[0].asnumpy()
    np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
    print(f"mxnet {mx.__version__}: {len(inputs)} utterances, hidden {args.hidden}, layers {args.layers}")


if __name__ == "__main__":
    main()
