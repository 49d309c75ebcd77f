"""The original toolkit's Python API, kept so its users' code runs unchanged.

    from speech_reps.featurize import DeCoARFeaturizer
    featurizer = DeCoARFeaturizer("artifacts/decoar-encoder-29b8e2ac.params", gpu=0)
    feats = featurizer.file_to_feats("x.wav")  # (T, 2048) float32 ndarray
    Wav2VecFeaturizer("artifacts/wav2vec_large.pt").file_to_feats("x.wav")  # (T, 512)
"""

from speech_reps.pipeline import FileFeaturizer


class DeCoARFeaturizer:
    """DeCoAR on single files: Kaldi fbank + utterance CMVN + the encoder, on CPU or GPU ``gpu``."""

    def __init__(self, params=None, gpu=None, **model_options):
        self._run = FileFeaturizer("decoar", {"params": params, "gpu": gpu, **model_options})
        self.model = self._run.featurizer

    def file_to_feats(self, wav):
        """(T, 2048) features of an audio file (anything soundfile reads, or a 'cmd |' pipe)."""
        return self._run(wav)


class Wav2VecFeaturizer:
    """wav2vec 1.0 on single files: ``c`` (512-dim, 10 ms, Kaldi-aligned), on CPU or GPU ``gpu``."""

    def __init__(self, params=None, gpu=None, **model_options):
        self._run = FileFeaturizer("wav2vec", {"params": params, "gpu": gpu, **model_options})
        self.model = self._run.featurizer

    def file_to_feats(self, wav):
        """(T, 512) features of an audio file (anything soundfile reads, or a 'cmd |' pipe)."""
        return self._run(wav)
