#!/usr/bin/env python3
"""Kaldi data dirs from Asterisk's recorded prompts: <data-root>/{train,test}.

Reads <sounds>/{en_US_f_Allison,fr_CA_f_June,es_MX_f_Allison}/*.wav (8 kHz prompts, one voice per
language); takes the first --per-lang prompts of each language in name order, every 4th to
test. Utterance ids are <lang>-<prompt>, the language is the "speaker"; wav.scp entries are
sox pipes to 16 kHz, so Kaldi's pipe syntax is exercised (-D: sox would otherwise add random
dither when it resamples, and the features would change from run to run). Writes wav.scp,
utt2spk, spk2utt.

Usage: local/prepare_data.py [--per-lang N] <sounds-dir> <data-root>
"""

import argparse
import logging
import re
from pathlib import Path

VOICES = {"en": "en_US_f_Allison", "fr": "fr_CA_f_June", "es": "es_MX_f_Allison"}


def get_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-lang", type=int, default=40)
    p.add_argument("sounds")
    p.add_argument("data_root")
    return p.parse_args()


def prepare(sounds, data_root, per_lang):
    sets = {"train": {}, "test": {}}
    for lang, voice in VOICES.items():
        wavs = sorted(Path(sounds, voice).glob("*.wav"))[:per_lang]
        if len(wavs) < per_lang:
            raise SystemExit(f"prepare_data.py: {Path(sounds, voice)}: {len(wavs)} prompts, {per_lang} wanted")
        for i, wav in enumerate(wavs):
            utt = f"{lang}-{re.sub(r'[^A-Za-z0-9_-]', '_', wav.stem)}"
            sets["test" if i % 4 == 3 else "train"][utt] = (lang, f"sox -D {wav} -r 16000 -t wav - |")
    for name, utts in sets.items():
        d = Path(data_root, name)
        d.mkdir(parents=True, exist_ok=True)
        keys = sorted(utts, key=str.encode)
        (d / "wav.scp").write_text("".join(f"{u} {utts[u][1]}\n" for u in keys))
        (d / "utt2spk").write_text("".join(f"{u} {utts[u][0]}\n" for u in keys))
        (d / "spk2utt").write_text("".join(
            f"{lang} {' '.join(u for u in keys if utts[u][0] == lang)}\n" for lang in sorted(VOICES)))
        logging.info("%s: %d utterances", d, len(keys))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = get_args()
    logging.info("%s", vars(args))
    prepare(args.sounds, args.data_root, args.per_lang)
