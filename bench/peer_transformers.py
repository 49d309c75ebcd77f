"""A Hugging Face transformers loop over a data dir, as a user would write it: read each
utterance, run ``Wav2Vec2Model`` / ``HubertModel``, write the last hidden state to a Kaldi ark
with kaldiio. Run by the bench-peers venv's python (``make bench-peers``); imports nothing of
the toolkit.

The network is the base size with random weights (HF's default config is wav2vec 2.0 base and
HuBERT base: 7 conv layers with group norm, 12 x 768 transformer layers, the same architecture as
the toolkit's checkpoint); speed does not depend on the values.

--batch 1: one utterance per call. --batch N: utterances sorted by length, padded with zeros to
the longest of each group of N (no attention mask: base models with group norm were trained
without one, and HF's docs say to pass none), each output cut to its own frame count.

--device cuda:0: the model and each batch on the GPU, each output copied back for the writer
(what a user's loop does there).

Prints one JSON line: frames written, wall seconds after imports.
"""

import argparse
import json
import time


def get_args():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=("wav2vec2", "hubert"), required=True)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("data")
    p.add_argument("out")
    return p.parse_args()


def main():
    args = get_args()
    import kaldiio
    import numpy as np
    import soundfile as sf
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

    start = time.perf_counter()
    torch.manual_seed(0)
    config, cls = (Wav2Vec2Config(), Wav2Vec2Model) if args.model == "wav2vec2" else (HubertConfig(), HubertModel)
    dtype = getattr(torch, args.dtype)
    model = cls(config).eval().to(args.device, dtype)
    entries = [line.split(maxsplit=1) for line in open(f"{args.data}/wav.scp") if line.strip()]
    frames = 0
    with torch.inference_mode(), kaldiio.WriteHelper(f"ark,scp:{args.out}/feats.ark,{args.out}/feats.scp") as writer:
        if args.batch == 1:
            for utt, path in entries:
                wave, _ = sf.read(path.strip(), dtype="float32")
                out = model(torch.from_numpy(wave)[None].to(args.device, dtype)).last_hidden_state[0]
                writer(utt, out.float().cpu().numpy())
                frames += len(out)
        else:
            waves = {utt: sf.read(path.strip(), dtype="float32")[0] for utt, path in entries}
            order = sorted(waves, key=lambda u: len(waves[u]))
            for i in range(0, len(order), args.batch):
                group = order[i:i + args.batch]
                lengths = [len(waves[u]) for u in group]
                padded = np.zeros((len(group), max(lengths)), dtype=np.float32)
                for b, u in enumerate(group):
                    padded[b, :lengths[b]] = waves[u]
                out = model(torch.from_numpy(padded).to(args.device, dtype)).last_hidden_state.float().cpu()
                counts = model._get_feat_extract_output_lengths(torch.tensor(lengths)).tolist()
                for b, u in enumerate(group):
                    writer(u, out[b, :counts[b]].numpy())
                    frames += counts[b]
    print(json.dumps({"frames": frames, "wall": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
