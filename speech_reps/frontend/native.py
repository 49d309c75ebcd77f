"""fbank / MFCC on the CPU with kaldi-native-fbank (Kaldi's algorithms, no Kaldi build needed)."""

import numpy as np

from speech_reps.errors import ConfigError


class NativeBackend:
    """Computes one utterance at a time; ``options`` is a FeatureOptions."""

    name = "native"

    def __init__(self, options):
        unsupported = options.unsupported_natively()
        if unsupported:
            raise ConfigError(
                f"{' '.join(unsupported)}: not supported by the native front end "
                "(kaldi-native-fbank); use --fbank-backend kaldi with Kaldi's binaries on PATH"
            )
        import kaldi_native_fbank as knf

        self.options = options
        self._knf_opts = options.to_knf()
        self._cls = knf.OnlineFbank if options.kind == "fbank" else knf.OnlineMfcc

    def compute(self, key, wave):
        """Features (T, D) float32 of one utterance; ``wave`` is 1-D at int16 scale."""
        computer = self._cls(self._knf_opts)
        computer.accept_waveform(float(self.options.sample_rate), np.ascontiguousarray(wave, dtype=np.float32))
        computer.input_finished()
        n = computer.num_frames_ready
        if n == 0:
            return np.zeros((0, self.options.dim), dtype=np.float32)
        feats = np.stack([computer.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)
        if self.options["subtract-mean"]:
            feats = feats - feats.mean(axis=0, dtype=np.float64).astype(np.float32)
        return feats
