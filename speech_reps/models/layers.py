"""Several layers of one forward pass (``--layer 4,8,12``), for layer sweeps.

A model that takes ``--layer`` also takes a tuple of layers: its network then runs once, up to
the deepest one, and keeps each asked-for layer's output as it passes; ``featurize`` returns,
per utterance, those outputs side by side, (T, len(layers) * dim). Each block is exactly what
``--layer N`` alone computes (the same operations on the same batch), so splitting the columns
(pipeline: layer_sweep.py) gives bit for bit the single-layer outputs.
"""

from speech_reps.errors import ConfigError


def as_tuple(layer):
    """The layers asked for: (N,) for one (None: the model's output), the tuple itself for several."""
    return layer if isinstance(layer, tuple) else (layer,)


def check_layers(model, layer, last):
    """ConfigError unless every asked-for layer is in 0..last and none is asked twice."""
    layers = as_tuple(layer)
    for n in layers:
        if n is not None and not 0 <= n <= last:
            raise ConfigError(f"{model}: --layer {n}: the model has layers 0..{last}")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{model}: --layer {','.join(map(str, layers))}: a layer is named twice")


def joined(out):
    """A network's output: one tensor, or (several --layer) the layers' side by side."""
    if isinstance(out, list):
        import torch

        return torch.cat(out, dim=-1)
    return out


def stacked_dim(dim, layer):
    """Output columns: ``dim`` per asked-for layer."""
    return dim * len(as_tuple(layer))


def run_blocks(blocks, x, layer, *args):
    """``x`` through ``blocks`` (each called as block(x, *args)): the output after block
    ``layer`` (1-based; None: all of them), or for a tuple the list of the outputs after each of
    its blocks, from one pass up to the deepest."""
    if not isinstance(layer, tuple):
        for block in blocks[:layer] if layer is not None else blocks:
            x = block(x, *args)
        return x
    taps = {}
    for i, block in enumerate(blocks[:max(layer)], 1):
        x = block(x, *args)
        taps[i] = x
    return [taps[n] for n in layer]


def with_input(layer, x, deeper):
    """The outputs of a layer tuple that may hold 0 (``x``, the transformer's input):
    ``deeper(layers)`` gives the list of outputs of the tuple of the others."""
    deep = tuple(n for n in layer if n != 0)
    outputs = dict(zip(deep, deeper(deep))) if deep else {}
    outputs[0] = x
    return [outputs[n] for n in layer]
