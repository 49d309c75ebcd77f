"""A small SavedModel with TRILL's signature, built in the test (no hosted model is reachable).

Same call as google/nonsemantic-speech-benchmark/trill/3: ``m(samples=x, sample_rate=16000)`` with
x float32 or int16, ``[N]`` or ``[B, N]``, sample_rate a scalar int32 that must be 16000; the
same front end shape (25 ms / 10 ms log-mel, 64 bins, 125-7500 Hz; clips under 1 s zero-padded
to 16000 samples) and framing (96 mel frames, hop 17); outputs ``embedding`` and ``layer19`` from a
small seeded network. ``frill=True`` builds FRILL's call instead: one ``[1, N]`` argument.
"""

import numpy as np


def build(path, seed=0, layer19_dim=48, embedding_dim=16, frill=False):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    mel = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0)

    class TrillLike(tf.Module):
        def __init__(self):
            super().__init__()
            self.w19 = tf.Variable(rng.normal(0, 0.02, (96 * 64, layer19_dim)).astype(np.float32))
            self.w_emb = tf.Variable(rng.normal(0, 0.2, (layer19_dim, embedding_dim)).astype(np.float32))

        def _run(self, x):
            if x.dtype == tf.int16:
                x = tf.cast(x, tf.float32) / 32768.0
            squeeze = x.shape.rank == 1
            if squeeze:
                x = x[None]
            x = tf.pad(x, [[0, 0], [0, tf.maximum(0, 16000 - tf.shape(x)[1])]])
            power = tf.abs(tf.signal.stft(x, 400, 160, fft_length=512, pad_end=False)) ** 2
            logmel = tf.math.log(tf.tensordot(power, mel, 1) + 1e-3)
            frames = tf.signal.frame(logmel, 96, 17, axis=1)  # [B, T, 96, 64]
            flat = tf.reshape(frames, [tf.shape(frames)[0], tf.shape(frames)[1], 96 * 64])
            layer19 = tf.tanh(tf.tensordot(flat, self.w19, 1))
            out = {"embedding": tf.tensordot(layer19, self.w_emb, 1), "layer19": layer19}
            return {k: v[0] for k, v in out.items()} if squeeze else out

        @tf.function
        def __call__(self, samples, sample_rate=None):
            if frill:
                return {"embedding": self._run(samples)["embedding"]}
            tf.debugging.assert_equal(sample_rate, 16000, message="sample_rate must be 16000")
            return self._run(samples)

    module = TrillLike()
    if frill:
        module.__call__.get_concrete_function(tf.TensorSpec([1, None], tf.float32))
    else:
        for shape in ([None], [None, None]):
            for dtype in (tf.float32, tf.int16):
                module.__call__.get_concrete_function(samples=tf.TensorSpec(shape, dtype),
                                                      sample_rate=tf.TensorSpec([], tf.int32))
    tf.saved_model.save(module, str(path))
    return path
