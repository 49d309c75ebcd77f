"""Reference DeCoAR and DeCoAR 2.0 outputs from s3prl's upstream networks (runs in the s3prl parity
venv, tests/parity/s3prl_venv.sh, not in .venv).

The networks are s3prl 0.4.18's own, unchanged: s3prl/upstream/decoar/decoar.py ``Decoar``
(Linear 80 -> 1024, a 4-layer forward LSTM and a 4-layer backward LSTM over each utterance
reversed to its length, outputs concatenated) and s3prl/upstream/decoar2/decoar2.py ``Decoar2``
(Linear 80 -> 768 + wav2vec 2.0's TransformerEncoder, 12 post-LN layers). Each checkpoint's
"model" state dict is loaded the way s3prl's UpstreamExpert loads it; the expert's own
``load_state_dict(strict=False)`` would silently leave a misnamed tensor at its random init, so
here the missing/unexpected keys are reported and are an error. The expert's ``forward``
(torchaudio fbank + CMVN, then the batch) is not imported, because its module needs torchaudio:
the inputs given here are already the features, and the batch is built as the expert builds it
(pad_sequence, a padding mask of the features' shape true past each length, the model's
``padding_mask.view(B, T, -1).all(-1)``). ``torch.load(weights_only=False)``: the checkpoints
hold an argparse Namespace, which torch >= 2.6's default refuses.

Outputs (outputs.npz): batched/decoar/<utt>, batched/decoar2/<utt> (all utterances in one padded
batch), decoar2/<utt> and decoar2_layer<N>/<utt> (DeCoAR 2.0 on each utterance alone: the
encoder's output, and layer N's, N = 1..12).

Usage: python decoar_s3prl_reference.py --decoar ckpt.pt --decoar2 ckpt2.pt \
           --inputs in.npz --inputs2 in2.npz --out-dir DIR
"""

import argparse
import os

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from s3prl.upstream.decoar.decoar import Decoar
from s3prl.upstream.decoar2.decoar2 import Decoar2


def load(model, ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    missing, unexpected = model.load_state_dict(state, strict=False)  # as s3prl's UpstreamExpert
    if missing or unexpected:
        raise SystemExit(f"{ckpt}: missing {missing}, unexpected {unexpected}")
    return model.eval()


def padded_batch(features):
    """UpstreamExpert.forward's batch: padded features and a mask of their shape."""
    lengths = [len(f) for f in features]
    batch = pad_sequence(features, batch_first=True)
    padding_mask = torch.BoolTensor(batch.shape).fill_(False)
    for i, length in enumerate(lengths):
        if length < max(lengths):
            padding_mask[i, length - max(lengths):] = True
    return batch, padding_mask, lengths


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--decoar", required=True)
    p.add_argument("--decoar2", required=True)
    p.add_argument("--inputs", required=True, help="npz: utt -> (T, 80) features for DeCoAR")
    p.add_argument("--inputs2", required=True, help="npz: utt -> (T/2, 80) features for DeCoAR 2.0")
    p.add_argument("--out-dir", required=True)
    args = p.parse_args()
    torch.set_num_threads(min(4, torch.get_num_threads()))

    decoar = load(Decoar(), args.decoar)
    decoar2 = load(Decoar2(), args.decoar2)
    decoar2.encoder.layerdrop = 0.0  # as the UpstreamExpert sets it
    outputs = {}
    with torch.no_grad():
        for name, model, path in (("decoar", decoar, args.inputs), ("decoar2", decoar2, args.inputs2)):
            inputs = {k: torch.from_numpy(v) for k, v in np.load(path).items()}
            for key, feats in inputs.items() if name == "decoar2" else ():  # DeCoAR: the batch only (slow)
                x, layer_results = model(*padded_batch([feats])[:2])
                outputs[f"decoar2/{key}"] = x[0].numpy()
                for n, (hidden, _, _) in enumerate(layer_results, 1):  # T x B x C
                    outputs[f"decoar2_layer{n}/{key}"] = hidden[:, 0].numpy()
            keys = list(inputs)
            batch, mask, lengths = padded_batch([inputs[k] for k in keys])
            out = model(batch, mask)
            out = out if name == "decoar" else out[0]
            for i, key in enumerate(keys):
                outputs[f"batched/{name}/{key}"] = out[i, :lengths[i]].numpy()
    os.makedirs(args.out_dir, exist_ok=True)
    np.savez(os.path.join(args.out_dir, "outputs.npz"), **outputs)
    print(f"torch {torch.__version__}: {len(outputs)} reference outputs")


if __name__ == "__main__":
    main()
