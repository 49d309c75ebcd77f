"""Reference GE2E outputs from resemblyzer itself (runs in the resemblyzer parity venv, not in .venv).

For each utterance of --audio (floats in [-1, 1] at 16 kHz) writes, keys <utt>/<what>:
  plain_embed, plain_partials: VoiceEncoder().embed_utterance on the volume-normalised wave
      (resemblyzer's normalize_volume, no silence trimming: speech-reps' default)
  plain_mel: resemblyzer's wav_to_mel_spectrogram of that wave
  pre_wave, pre_embed, pre_partials: preprocess_wav (volume + webrtcvad trim) and its embedding
  ours_trimmed: speech-reps' own trim_long_silences (webrtcvad is here) on its own normalised wave
and librosa_mel_filters: librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), the filters
resemblyzer's front end uses.

--embeddings-only keeps just the *_embed and *_partials keys (what tests/data/ge2e/ holds).

Usage: PYTHONPATH=<repo> python ge2e_resemblyzer_reference.py [--embeddings-only] --audio audio.npz --out ref.npz
"""

import argparse

import librosa
import numpy as np
from resemblyzer import VoiceEncoder, audio, preprocess_wav
from resemblyzer.hparams import audio_norm_target_dBFS

from speech_reps.models import ge2e_frontend


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--audio", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--embeddings-only", action="store_true")
    args = p.parse_args()
    encoder = VoiceEncoder("cpu", verbose=False)
    out = {"librosa_mel_filters": librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)}
    for utt, wav in np.load(args.audio).items():
        wav = wav.astype(np.float32)
        plain = audio.normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
        out[f"{utt}/plain_embed"], out[f"{utt}/plain_partials"], _ = encoder.embed_utterance(plain, return_partials=True)
        out[f"{utt}/plain_mel"] = audio.wav_to_mel_spectrogram(plain)
        pre = preprocess_wav(wav)
        out[f"{utt}/pre_wave"] = pre
        out[f"{utt}/pre_embed"], out[f"{utt}/pre_partials"], _ = encoder.embed_utterance(pre, return_partials=True)
        out[f"{utt}/ours_trimmed"] = ge2e_frontend.trim_long_silences(ge2e_frontend.normalize_volume(wav))
    if args.embeddings_only:
        out = {k: v for k, v in out.items() if k.endswith(("_embed", "_partials"))}
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
