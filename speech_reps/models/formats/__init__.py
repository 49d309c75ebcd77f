"""Weight file formats, read without the frameworks that wrote them, and the one strict loader.

  mxnet.py         MXNet NDArray lists (Gluon ``.params``), read with numpy
  gluon.py         Gluon parameter names mapped onto a model's canonical names
  torch_pickle.py  PyTorch checkpoints, unpickled with an allow-list (never running pickled code)
  fairseq.py       fairseq checkpoints: their config (Namespace / omegaconf) as plain dicts
  resemblyzer.py   resemblyzer's GE2E checkpoint, and the wheel that carries it
  strict.py        the strict loader every model uses: every missing, unexpected and mis-shaped
                   tensor reported at once, in one error naming the file

Every problem with a file is a ``WeightsError`` (a ConfigError): one line, starting with the path.
"""

from speech_reps.errors import ConfigError


class WeightsError(ConfigError):
    """A weights file that cannot be used: one line, starting with the file's path."""


def first_line(error):
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def one_line(error):
    """An exception's whole message on one line (whitespace runs, newlines included, as one space)."""
    return " ".join(str(error).split()) or type(error).__name__
