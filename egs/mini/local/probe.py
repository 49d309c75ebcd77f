#!/usr/bin/env python3
"""A language-ID probe: do the features carry information? Multinomial logistic regression on
mean-pooled, standardised features, trained on <train-dir>, scored on <test-dir>.

Reads feats.scp and utt2spk (the language) of both dirs; writes <out-dir>/accuracy and prints
"probe: <model> test accuracy A (n utterances, chance C)".

Usage: local/probe.py [--name NAME] <train-dir> <test-dir> <out-dir>
"""

import argparse
import logging
from pathlib import Path

import kaldiio
import numpy as np


def get_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="features")
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("out")
    return p.parse_args()


def pooled(data_dir):
    labels = dict(line.split() for line in Path(data_dir, "utt2spk").read_text().splitlines())
    feats = dict(kaldiio.load_scp(str(Path(data_dir, "feats.scp"))))
    keys = sorted(feats)
    return np.stack([feats[k].mean(axis=0) for k in keys]), [labels[k] for k in keys]


def train_logreg(x, y, classes, steps=500, lr=0.5, l2=1e-3):
    """Softmax regression by full-batch gradient descent (a handful of utterances: no library)."""
    onehot = np.eye(len(classes))[[classes.index(c) for c in y]]
    w = np.zeros((x.shape[1], len(classes)))
    b = np.zeros(len(classes))
    for _ in range(steps):
        logits = x @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(x)
        w -= lr * (x.T @ grad + l2 * w)
        b -= lr * grad.sum(axis=0)
    return w, b


def probe(train, test, out, name):
    xtr, ytr = pooled(train)
    xte, yte = pooled(test)
    mean, std = xtr.mean(axis=0), xtr.std(axis=0) + 1e-8
    classes = sorted(set(ytr))
    w, b = train_logreg((xtr - mean) / std, ytr, classes)
    pred = [classes[i] for i in (((xte - mean) / std) @ w + b).argmax(axis=1)]
    accuracy = float(np.mean([p == t for p, t in zip(pred, yte)]))
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "accuracy").write_text(f"{accuracy:.4f}\n")
    print(f"probe: {name} test accuracy {accuracy:.3f} ({len(yte)} utterances, chance {1 / len(classes):.3f})")
    return accuracy


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = get_args()
    logging.info("%s", vars(args))
    probe(args.train, args.test, args.out, args.name)
