"""The one compiled part: Kaldi's FloatToChar (speech_reps/kaldi/_compress_kernels.c).

Everything else is in pyproject.toml. The extension is optional: where it cannot be built (no C
compiler or Python headers), the install goes on and speech_reps.kaldi.compress computes the same
bytes with numpy, more slowly.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "speech_reps.kaldi._compress_kernels",
    sources=["speech_reps/kaldi/_compress_kernels.c"],
    # exact IEEE float32/double arithmetic as Kaldi's: no fused multiply-add, no fast-math;
    # no trapping math lets the compiler vectorise the selects (results are the same)
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"],
    optional=True,
)])
