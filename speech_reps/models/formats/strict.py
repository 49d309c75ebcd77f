"""The strict loader: a file's tensors against what the model needs, every problem at once.

``check_tensors`` compares named tensors with the shapes a model needs and raises one
WeightsError listing every missing, unexpected and mis-shaped tensor; ``load_into`` does that
against a torch module's own state dict and then loads it (``strict=True``). Every model reads
its weights through these two.
"""

import numpy as np

from speech_reps.models.formats import WeightsError


def tensor_problems(tensors, shapes, others=()):
    """["missing: a, b", "unexpected: c", "wrong shape: d (2, 3) (expected (3, 2))"], empty when
    ``tensors`` ({name: array}) are exactly ``shapes`` ({name: shape}). ``others``: names in the
    file that are not tensors of the model (unmatched names, non-tensor values): unexpected."""
    missing = sorted(set(shapes) - set(tensors))
    unexpected = sorted((set(tensors) - set(shapes)) | set(others))
    misshaped = sorted(f"{n} {tuple(tensors[n].shape)} (expected {tuple(shapes[n])})"
                       for n in shapes if n in tensors and tuple(tensors[n].shape) != tuple(shapes[n]))
    return [f"{label}: {', '.join(items)}" for label, items in
            (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if items]


def check_tensors(path, tensors, shapes, what, others=(), unexpected_hint=""):
    """Raise one WeightsError '<path>: <what>: missing: ...; unexpected: ...; wrong shape: ...'
    unless ``tensors`` are exactly ``shapes``; ``unexpected_hint`` is added when some are unexpected."""
    problems = tensor_problems(tensors, shapes, others)
    if problems:
        hint = unexpected_hint if any(p.startswith("unexpected:") for p in problems) else ""
        raise WeightsError(f"{path}: {what}: " + "; ".join(problems) + hint)


def load_into(net, tensors, path, what, ignored=(), others=(), unexpected_hint=""):
    """Load ``tensors`` ({name: ndarray or torch tensor}) into the torch module ``net``, strictly:
    its state dict's names and shapes are what is needed; names starting with ``ignored`` (a
    training head) are left out. Float tensors are loaded as float32."""
    import torch

    used = {k: v for k, v in tensors.items() if not k.startswith(tuple(ignored))}
    wanted = net.state_dict()
    check_tensors(path, used, {k: tuple(v.shape) for k, v in wanted.items()}, what, others, unexpected_hint)
    net.load_state_dict({k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v.to(torch.float32)
                         for k, v in used.items()}, strict=True)
    return net
