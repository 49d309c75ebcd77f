"""The compiled parts: Kaldi compression's per-column work (speech_reps/kaldi/_compress_kernels.c)
and fbank/MFCC's per-frame work (speech_reps/frontend/_fbank_kernels.c).

Everything else is in pyproject.toml. The extensions are optional: where they cannot be built (no
C compiler or Python headers), the install goes on and numpy computes the same results, more
slowly (speech_reps/kaldi/compress.py, speech_reps/frontend/numpy_backend.py).
"""
from setuptools import Extension, setup

# IEEE float32/double arithmetic as written: no fused multiply-add, no fast-math (the compressor
# must give Kaldi's bytes); no trapping math and no errno lets the compiler vectorise the selects
# and square roots (the results are the same)
FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"]

setup(ext_modules=[
    Extension("speech_reps.kaldi._compress_kernels", sources=["speech_reps/kaldi/_compress_kernels.c"],
              extra_compile_args=FLAGS, optional=True),
    Extension("speech_reps.frontend._fbank_kernels", sources=["speech_reps/frontend/_fbank_kernels.c"],
              extra_compile_args=FLAGS, optional=True),
])
