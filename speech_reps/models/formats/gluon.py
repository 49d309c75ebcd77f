"""Gluon parameter names onto a model's canonical (PyTorch port's) names.

A model gives its map as [(pattern searched at the end of a file's name, function from the
match to the canonical name)]; one shared leading prefix (a Gluon block's, e.g. 'decoar0_') is
allowed, two are not one model. Gluon's Dense and LSTM tensors have PyTorch's layouts (Dense
(out, in); LSTM gates i, f, c|g, o), so tensors copy unchanged.
"""

from speech_reps.models.formats import WeightsError


def canonicalize(tensors, patterns, path, model):
    """({canonical name: tensor}, [names no pattern matched]) of a file's ``tensors``."""
    out, prefixes, unexpected, sources = {}, set(), [], {}
    for name, value in tensors.items():
        for pattern, canonical in patterns:
            m = pattern.search(name)
            if m:
                prefixes.add(name[:m.start()])
                target = canonical(m)
                if target in sources:
                    raise WeightsError(f"{path}: {sources[target]} and {name} both read as {target}; "
                                       f"not one {model} model")
                sources[target] = name
                out[target] = value
                break
        else:
            unexpected.append(name)
    if len(prefixes) > 1:
        raise WeightsError(f"{path}: tensor names mix prefixes {sorted(prefixes)}; not one {model} model")
    return out, unexpected


def layer_count(indices, num_tensors, path, model):
    """1 + the largest layer index in ``indices`` (strings of digits from tensor names). More
    layers than tensors cannot be: a damaged name, refused before anything is sized by it."""
    layers = 1 + max((int(i) for i in indices), default=-1)
    if layers > num_tensors:
        raise WeightsError(f"{path}: not a {model} model: a tensor of layer {layers - 1}, "
                           f"among {num_tensors} tensors")
    return layers
