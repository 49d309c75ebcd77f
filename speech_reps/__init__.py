"""speech-reps: Kaldi data dirs in, pretrained speech representations out as Kaldi features.

Importing the package is cheap: no deep-learning framework is imported here. Each model
module imports its framework (torch, TensorFlow) only when the model is built.
"""

__version__ = "0.1.0"
