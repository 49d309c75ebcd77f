"""Utterance- and speaker-level vectors laid out as Kaldi's extract_xvectors.sh leaves them:
xvector.{ark,scp} (one vector per utterance), spk_xvector.{ark,scp} (the mean of each speaker's
utterance vectors, as ivector-mean) and num_utts.ark (utterances per speaker)."""

import kaldiio
import numpy as np

from speech_reps.kaldi.writer import FeatureWriter, write_scp_like

POOLS = ("none", "mean")


def pool(feats, how):
    """One float32 vector for an utterance's (T, D) features."""
    if how == "mean":
        return feats.mean(axis=0, dtype=np.float64).astype(np.float32)
    raise ValueError(f"unknown pooling '{how}' (expected one of {', '.join(POOLS)})")


def write_speaker_means(out_dir, utt_entries, utt2spk):
    """spk_xvector.{ark,scp} and num_utts.ark from the utterance vectors in ``utt_entries``."""
    vectors = {}
    for utt, location in utt_entries:
        vectors.setdefault(utt2spk[utt], []).append(kaldiio.load_mat(location))
    with FeatureWriter(out_dir / "spk_xvector.ark", out_dir / "spk_xvector.scp") as writer:
        for spk, vs in vectors.items():
            writer.write(spk, np.mean(vs, axis=0, dtype=np.float64).astype(np.float32))
    write_scp_like(out_dir / "num_utts.ark", sorted(((s, len(v)) for s, v in vectors.items()),
                                                    key=lambda x: x[0].encode()))
