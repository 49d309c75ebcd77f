"""lhotse's Kaldi-compatible ``Fbank`` over a data dir, as a lhotse user computes features:
recordings -> cuts -> ``CutSet.compute_and_store_features`` (one job, numpy files). Run by the
bench-peers venv's python (``make bench-peers``); imports nothing of the toolkit.

The options are the toolkit's conf/fbank.conf (80 bins) with dither 0, as in the toolkit's run;
lhotse's other defaults are Kaldi's, except snip_edges: lhotse's is false (a frame per 10 ms,
1-2 more per utterance than Kaldi's true) and its manifests check that count, so it stays.

Prints one JSON line: frames written, wall seconds after imports.
"""

import argparse
import json
import time


def get_args():
    p = argparse.ArgumentParser()
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("data")
    p.add_argument("out")
    return p.parse_args()


def main():
    args = get_args()
    from lhotse import CutSet, Fbank, FbankConfig, Recording, RecordingSet
    from lhotse.features.io import NumpyFilesWriter

    start = time.perf_counter()
    recordings = RecordingSet.from_recordings(
        Recording.from_file(path.strip(), recording_id=utt)
        for utt, path in (line.split(maxsplit=1) for line in open(f"{args.data}/wav.scp") if line.strip()))
    cuts = CutSet.from_manifests(recordings=recordings)
    extractor = Fbank(FbankConfig(num_mel_bins=args.num_mel_bins, dither=0.0))
    cuts = cuts.compute_and_store_features(extractor=extractor, storage_path=args.out,
                                           storage_type=NumpyFilesWriter, num_jobs=1)
    frames = sum(cut.num_frames for cut in cuts)
    print(json.dumps({"frames": frames, "wall": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
