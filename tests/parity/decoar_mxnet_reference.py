"""Reference DeCoAR outputs from MXNet Gluon (runs in the MXNet parity venv, not in .venv).

The encoder block follows the original Gluon DeCoAR, awslabs/speech-representations
src/speech_reps/models/decoar.py at commit e2f6d168ba9f4310d3c7c2f6f4a03648637372df (unchanged
since ae24ece970ea, 2020-05-14; replaced by a PyTorch port in 33419e66, which s3prl carries and
tests/test_decoar_s3prl_parity.py runs), and that commit's featurize.py DeCoARFeaturizer, which
builds it as DeCoAR(40, 1024, num_hidden=1024, num_layers=4, dropout=0), loads the file with
load_parameters(ignore_extra=True), hybridizes it (static_alloc) and runs one utterance as a
(T, 1, 40) TNC batch with data_len [T]. Checked line by line, the same here: a Block whose
children are made in its name scope (a Dense to num_embed units, flatten=False, input size
deferred; two unidirectional LSTMs of num_hidden units, num_layers layers, dropout 0, input
size num_embed, TNC layout); forward starts both LSTMs from zero states (begin_state), runs the
forward one on the projection, the backward one on the projection reversed within each valid
length (SequenceReverse on the time axis) and reverses its output back the same way, and
concatenates the two on the feature axis. The code is ours; the differences: num_embed is
--hidden (1024 in the original, where num_embed = num_hidden), the input size comes from the
data (40 there), the prefix decoar0_ is given (the original gets it as the first DeCoAR
created), the weights are seeded random ones (Uniform(1/sqrt(hidden)), biases too), and the
output row is taken as [t, 0, :] rather than by flatten() (the same values for one utterance).
The featurizer's Kaldi front end (compute-fbank-feats --num-mel-bins=40, compute-cmvn-stats,
apply-cmvn --norm-vars=true) is not run here: the inputs are given.

Saves the block both ways and runs it utterance by utterance on the given CMVN'd fbank:
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


class DeCoAR(gluon.Block):
    def __init__(self, num_embed, num_hidden, num_layers, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = nn.Dense(num_embed, flatten=False)
            self.rnn_forward = rnn.LSTM(num_hidden, num_layers, dropout=dropout, input_size=num_embed)
            self.rnn_backward = rnn.LSTM(num_hidden, num_layers, dropout=dropout, input_size=num_embed)

    def forward(self, x, data_len):
        """x: (T, N, C) TNC; data_len: (N,) valid lengths."""
        zeros_fwd = self.rnn_forward.begin_state(func=mx.nd.zeros, batch_size=len(data_len), ctx=x.context)
        zeros_bwd = self.rnn_backward.begin_state(func=mx.nd.zeros, batch_size=len(data_len), ctx=x.context)
        h = self.encoder(x)
        forward, _ = self.rnn_forward(h, zeros_fwd)

        def reverse(t):
            return mx.nd.SequenceReverse(t, sequence_length=data_len, use_sequence_length=True, axis=0)

        backward, _ = self.rnn_backward(reverse(h), zeros_bwd)
        return mx.nd.concat(forward, reverse(backward), dim=2)


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
    model = DeCoAR(args.hidden, args.hidden, args.layers, prefix="decoar0_")
    bound = 1.0 / np.sqrt(args.hidden)
    model.initialize(mx.init.Uniform(bound))
    model.hybridize(static_alloc=True)  # as the featurizer does: the Dense and LSTMs
    model(mx.nd.zeros((1, 1, input_dim)), mx.nd.array([1]))  # the Dense's deferred input size
    # Non-zero biases, so a dropped or swapped bias cannot go unnoticed.
    for name, param in model.collect_params().items():
        if name.endswith("bias"):
            param.set_data(mx.nd.random.uniform(-bound, bound, shape=param.shape))
    os.makedirs(args.out_dir, exist_ok=True)
    model.save_parameters(os.path.join(args.out_dir, "structural.params"))
    model.collect_params().save(os.path.join(args.out_dir, "legacy.params"))

    outputs = {}
    for key, feats in inputs.items():  # (T, 1, C), as the featurizer's expand_dims(axis=1)
        x = mx.nd.array(feats[:, None].astype(np.float32))
        outputs[key] = model(x, mx.nd.array([len(feats)]))[:, 0].asnumpy()
    np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
    print(f"mxnet {mx.__version__}: {len(inputs)} utterances, hidden {args.hidden}, layers {args.layers}")


if __name__ == "__main__":
    main()
