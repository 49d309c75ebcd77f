"""The original toolkit's Python API, kept so its users' code runs unchanged.

    from speech_reps.featurize import DeCoARFeaturizer
    featurizer = DeCoARFeaturizer("artifacts/decoar-encoder-29b8e2ac.params", gpu=0)
    feats = featurizer.file_to_feats("x.wav")  # (T, 2048) float32 ndarray
    Wav2VecFeaturizer("artifacts/wav2vec_large.pt").file_to_feats("x.wav")  # (T, 512)
    TrillFeaturizer("artifacts/trill_3").file_to_feats("x.wav")  # (T, 12288)
    GE2EFeaturizer().file_to_dvector("x.wav")  # (256,): resemblyzer's d-vector
    DeCoAR2Featurizer("artifacts/checkpoint_decoar2.pt").file_to_feats("x.wav")  # (T, 768), 20 ms
    BertPhoneFeaturizer("artifacts/bertphone_fisher_02-87159543.params").file_to_feats("x8k.wav")  # (T, 768), 30 ms
"""

from speech_reps.engine.run import FileFeaturizer


class _SeedFeaturizer:
    """One model on single files; ``params`` is the weights file (or TF-Hub handle)."""

    model_name = None

    def __init__(self, params=None, gpu=None, **model_options):
        self._run = FileFeaturizer(self.model_name, {"params": params, "gpu": gpu, **model_options})
        self.model = self._run.featurizer

    def file_to_feats(self, wav):
        """(T, dim) float32 features of an audio file (anything soundfile reads, or 'cmd |')."""
        return self._run(wav)


class DeCoARFeaturizer(_SeedFeaturizer):
    """DeCoAR: Kaldi fbank + utterance CMVN + the encoder; (T, 2048) at 10 ms."""

    model_name = "decoar"


class DeCoAR2Featurizer(_SeedFeaturizer):
    """DeCoAR 2.0: Kaldi fbank + utterance CMVN, every second frame, the encoder; (T, 768) at 20 ms."""

    model_name = "decoar2"


class BertPhoneFeaturizer(_SeedFeaturizer):
    """BERTphone on 8 kHz audio: MFCC + utterance CMVN, 3 frames stacked, BERT; (T, 768) at 30 ms."""

    model_name = "bertphone"


class Wav2VecFeaturizer(_SeedFeaturizer):
    """wav2vec 1.0: ``c`` (512-dim, 10 ms, Kaldi's frame count)."""

    model_name = "wav2vec"


class TrillFeaturizer(_SeedFeaturizer):
    """TRILL: layer19 (default) or embedding frames every 0.17 s."""

    model_name = "trill"


class GE2EFeaturizer(_SeedFeaturizer):
    """GE2E (resemblyzer's pretrained.pt by default): (T, 256) partial embeddings every 0.77 s."""

    model_name = "ge2e"

    def file_to_dvector(self, wav):
        """The utterance d-vector (256, unit length), as resemblyzer's embed_utterance."""
        return self.model.pool(self._run(wav), "mean")
