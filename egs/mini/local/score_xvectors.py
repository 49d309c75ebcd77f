#!/usr/bin/env python3
"""Cosine scoring of utterance vectors: equal-error rate over all pairs of a data dir's utterances.

Trials are every unordered pair of distinct utterances in <xvector-dir>/xvector.scp; a pair is a
target trial when utt2spk gives both the same speaker. In egs/mini the "speaker" is the language
and each language is one recorded voice, so target = same voice = same language: the EER shows
that the vectors separate voices (or languages — this corpus cannot tell which). Asterisk names
both the en_US and the es_MX voice "Allison": if that is one person, some non-target trials are
really same-speaker pairs and the EER is pessimistic.

Reads <xvector-dir>/xvector.scp and <data-dir>/utt2spk; writes <out-dir>/eer (percent) and
<out-dir>/scores (<utt1> <utt2> <cosine> target|nontarget), and prints
"eer: <name> EER E% (T target / N non-target trials: ...)".

Usage: local/score_xvectors.py [--name NAME] <data-dir> <xvector-dir> <out-dir>
"""

import argparse
import logging
from pathlib import Path

import kaldiio
import numpy as np


def get_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="xvectors")
    p.add_argument("data")
    p.add_argument("xvectors")
    p.add_argument("out")
    return p.parse_args()


def equal_error_rate(scores, is_target):
    """EER (fraction) of scores where higher means "same speaker".

    Sweeping the threshold over the sorted scores, the miss rate rises and the false-alarm rate
    falls step by step; the EER is taken where they cross, as the mean of the two rates at the
    threshold where they are closest.
    """
    scores, is_target = np.asarray(scores, float), np.asarray(is_target, bool)
    n_target, n_nontarget = is_target.sum(), (~is_target).sum()
    if n_target == 0 or n_nontarget == 0:
        raise ValueError(f"need target and non-target trials (have {n_target} and {n_nontarget})")
    order = np.argsort(scores, kind="stable")
    labels = is_target[order]
    # rejecting the k lowest scores, k = 0..len: misses = targets among them, false alarms = the rest accepted
    misses = np.concatenate([[0], np.cumsum(labels)]) / n_target
    false_alarms = 1.0 - np.concatenate([[0], np.cumsum(~labels)]) / n_nontarget
    k = np.argmin(np.abs(misses - false_alarms))
    return float((misses[k] + false_alarms[k]) / 2)


def score(data_dir, xvector_dir, out_dir, name):
    spk = dict(line.split() for line in Path(data_dir, "utt2spk").read_text().splitlines())
    vectors = dict(kaldiio.load_scp(str(Path(xvector_dir, "xvector.scp"))))
    keys = sorted(vectors)
    x = np.stack([vectors[k] for k in keys]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    i, j = np.triu_indices(len(keys), k=1)
    cosines = np.einsum("nd,nd->n", x[i], x[j])
    target = np.array([spk[keys[a]] == spk[keys[b]] for a, b in zip(i, j)])
    eer = equal_error_rate(cosines, target)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "eer").write_text(f"{100 * eer:.2f}\n")
    Path(out_dir, "scores").write_text("".join(
        f"{keys[a]} {keys[b]} {c:.6f} {'target' if t else 'nontarget'}\n" for a, b, c, t in zip(i, j, cosines, target)))
    print(f"eer: {name} EER {100 * eer:.2f}% ({target.sum()} target / {(~target).sum()} non-target trials: "
          f"all pairs of {len(keys)} test prompts, cosine of xvector.scp; target = same utt2spk label, "
          "here the language, each recorded by one voice)")
    return eer


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = get_args()
    logging.info("%s", vars(args))
    score(args.data, args.xvectors, args.out, args.name)
