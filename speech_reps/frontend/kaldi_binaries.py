"""fbank / MFCC with the real Kaldi binaries (compute-fbank-feats, compute-mfcc-feats).

The audio goes to the binary as an archive of 16-bit wavs on stdin and the features come back
as an archive on stdout (one process per utterance: this backend is for checking, not speed). Audio that is not integral after
resampling is rounded to int16, which is what Kaldi would read from a wav anyway.
"""

import io
import os
import shutil
import subprocess
import tempfile

import kaldiio
import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.frontend.options import PROGRAMS
from speech_reps.kaldi.options import format_value

# Options speech-reps applies before the binary sees the audio (channel choice, resampling,
# duration limits), so they are not passed on.
_HANDLED_HERE = {"channel", "min-duration", "allow-downsample", "allow-upsample"}


class KaldiBinaryBackend:
    name = "kaldi"

    def __init__(self, options):
        self.options = options
        self.program = PROGRAMS[options.kind]
        self.path = shutil.which(self.program)
        if self.path is None:
            raise ConfigError(
                f"--fbank-backend kaldi: {self.program} is not on PATH; set KALDI_ROOT and "
                "source path.sh (it adds $KALDI_ROOT/src/featbin), or use --fbank-backend native"
            )
        fd, self._conf = tempfile.mkstemp(prefix="speech-reps-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            for name, value in options.values.items():
                if name in _HANDLED_HERE or value == "" or name == "verbose":
                    continue
                f.write(f"--{name}={format_value(value)}\n")

    def __del__(self):
        if getattr(self, "_conf", None) and os.path.exists(self._conf):
            os.unlink(self._conf)

    def compute(self, key, wave):
        """Features (T, D) float32 of one utterance; ``wave`` is 1-D at int16 scale."""
        pcm = np.clip(np.rint(wave), -32768, 32767).astype(np.int16)
        wav_ark = io.BytesIO()
        kaldiio.save_ark(wav_ark, {key: (self.options.sample_rate, pcm)})
        proc = subprocess.run(
            [self.path, f"--config={self._conf}", "ark:-", "ark:-"],
            input=wav_ark.getvalue(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{self.program} failed (exit {proc.returncode}): {' | '.join(tail)}")
        feats = dict(kaldiio.load_ark(io.BytesIO(proc.stdout)))
        if key not in feats:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"{self.program} produced no features: {' '.join(tail)}")
        return np.asarray(feats[key], dtype=np.float32)
