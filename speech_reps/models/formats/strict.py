"""The strict loader: a file's tensors against what the model needs, every problem at once.

``check_tensors`` compares named tensors with the shapes a model needs and raises one
WeightsError listing every missing, unexpected and mis-shaped tensor; ``load_into`` does that
against a torch module's own state dict and then loads it (``strict=True``). Every model reads
its weights through these two. ``uninitialised`` makes the module they fill without drawing the
random weights the file replaces.
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


def uninitialised(make):
    """``make()``, a torch module, with memory for its parameters and buffers but none of the
    random values a module draws when made, for ``load_into`` to fill (every tensor of its state
    dict, strictly): drawing them cost DeCoAR 0.5-0.8 s and wav2vec 2.0 base 1.0 s of every run's
    start-up, for values the checkpoint then replaced."""
    import torch

    try:
        with torch.device("meta"):
            net = make()
    except (RuntimeError, NotImplementedError):  # a module that computes with its tensors when made
        return make()
    return allocated(net, make)


def allocated(net, make):
    """``net``, made on torch's meta device, with uninitialised CPU memory for each parameter and
    buffer (``Module.to_empty`` would first import torch's reference implementations: 0.9 s);
    ``make()`` instead when ``net`` holds tensors its state dict does not (loading would leave
    them unset)."""
    import torch

    tensors = dict(net.named_parameters(remove_duplicate=False)) | dict(net.named_buffers(remove_duplicate=False))
    plain = any(isinstance(v, torch.Tensor) for m in net.modules() for v in vars(m).values())
    if plain or set(tensors) != set(net.state_dict()):
        return make()
    made = {}  # a tensor shared by two modules stays shared
    for module in net.modules():
        for kind, new in ((module._parameters, lambda t: torch.nn.Parameter(torch.empty(t.shape, dtype=t.dtype),
                                                                              t.requires_grad)),
                          (module._buffers, lambda t: torch.empty(t.shape, dtype=t.dtype))):
            for name, t in list(kind.items()):
                if t is not None:
                    if id(t) not in made:
                        made[id(t)] = new(t)
                    setattr(module, name, made[id(t)])  # through __setattr__: an RNN's flat weights follow
    return net
