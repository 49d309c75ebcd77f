"""The model declarations as tables: ``speech-reps models`` (what this install has) and the
README's model table (generated here, checked by tests/test_model_catalog.py).

    python -m speech_reps.models.catalog readme README.md   # rewrite the README's table
    python -m speech_reps.models.catalog check-readme README.md  # exit 1 naming each row that differs
    python -m speech_reps.models.catalog weights decoar     # the model's weight file names
"""

import importlib.util
import sys
from pathlib import Path

from speech_reps.conf_dir import artifacts_dir
from speech_reps.errors import SpeechRepsError
from speech_reps.models.registry import documented_model_names, specs

README_BEGIN = "<!-- models table: generated from the declarations by python -m speech_reps.models.catalog readme -->"
README_END = "<!-- end of the models table -->"
# how to get an optional package, by its import name
EXTRAS = {"tensorflow": "pip install 'speech-reps[trill]'", "webrtcvad": "pip install webrtcvad"}


def default_weights_path(spec):
    """The weights file (or SavedModel dir) the model loads without --params: its conf's
    ``params`` under the artifacts location; None when the conf names none (or a URL)."""
    from speech_reps.models.config import _read_yaml, default_weights

    path = spec.conf_path()
    if path is None or not path.is_file():
        return None
    value = _read_yaml(str(path)).get("params")
    if not value or "://" in str(value):
        return None
    return default_weights(value)


def weights_status(spec):
    """Where this install finds the model's weights, or how to get them."""
    default = default_weights_path(spec)
    if default is not None and default.exists():
        return f"found: {default}"
    wheel = [w for w in spec.weights if w.in_wheel]
    if wheel:
        from speech_reps.models.formats.resemblyzer import installed_weights

        try:
            return f"found: {installed_weights()}"
        except SpeechRepsError:
            return f"get: pip install --no-deps {wheel[0].in_wheel}"
    others = [artifacts_dir() / w.file for w in spec.weights if (artifacts_dir() / w.file).is_file()]
    if others:  # a declared file that is not the conf's default
        return "found (pass it with --params): " + ", ".join(map(str, others))
    if spec.download_names():
        return "get: " + " or ".join(f"utils/download_models.sh {n}" for n in spec.download_names())
    if spec.weights_from:
        return f"--params: {spec.weights_from}"
    return "none needed"


def extras_status(spec):
    """The optional packages the model needs, each marked installed or how to get it."""
    out = []
    for extra in spec.extras:
        module = extra.split()[0]
        if importlib.util.find_spec(module) is not None:
            out.append(f"{extra}: installed")
        else:
            out.append(f"{extra}: {EXTRAS.get(module, 'pip install ' + module)}")
    return "; ".join(out) or "-"


def models_table():
    """``speech-reps models``: one line per model, columns aligned."""
    rows = [("model", "dim", "frame shift", "input rate", "weights", "extras")]
    for spec in specs():
        rows.append((spec.name, spec.dim.replace("`", ""), spec.frame_shift, f"{spec.input_rate} Hz",
                     weights_status(spec), extras_status(spec)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def _readme_status(spec):
    if spec.extras:
        return f"available ({', '.join(spec.extras)} extra)"
    return "available"


def readme_table(names=None):
    """The README's markdown table of the documented models (``names``: default every one)."""
    lines = ["| `--model` | representation | dim | frame shift | input the model needs | weights | status |",
             "|---|---|---|---|---|---|---|"]
    for spec in specs(documented_model_names() if names is None else names):
        if spec.download_names():
            weights = " or ".join(f"`utils/download_models.sh {n}`" for n in spec.download_names())
        elif spec.weights:
            weights = "; ".join(f"in the `{w.in_wheel}` wheel (SHA-256 pinned)" for w in spec.weights)
        else:
            weights = spec.weights_from or "none"
        lines.append(f"| `{spec.name}` | {spec.summary} | {spec.dim} | {spec.frame_shift} | {spec.input} | "
                     f"{weights} | {_readme_status(spec)} |")
    return "\n".join(lines)


def readme_section(text):
    """The table between the README's markers, or None."""
    if README_BEGIN not in text or README_END not in text:
        return None
    return text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()


def readme_problems(text):
    """What differs between a README's model table and the declarations: [one line each]."""
    have = readme_section(text)
    if have is None:
        return [f"no model table between '{README_BEGIN}' and '{README_END}'"]
    rows = {line.split("|")[1].strip(" `"): line for line in have.splitlines()[2:]}
    want = {line.split("|")[1].strip(" `"): line for line in readme_table().splitlines()[2:]}
    problems = [f"the table lacks {n}" for n in sorted(set(want) - set(rows))]
    problems += [f"the table has {n}, which no model declares" for n in sorted(set(rows) - set(want))]
    problems += [f"row {n} differs from its declaration: {want[n]}" for n in sorted(set(rows) & set(want))
                 if rows[n] != want[n]]
    if not problems and have != readme_table():
        problems.append("the table's header or order differs")
    return problems


def write_readme(path, names=None):
    text = Path(path).read_text(encoding="utf-8")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    Path(path).write_text(f"{head}{README_BEGIN}\n{readme_table(names)}\n{README_END}{tail}", encoding="utf-8")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "readme":
        write_readme(argv[1])
        return 0
    if len(argv) == 2 and argv[0] == "check-readme":
        problems = readme_problems(Path(argv[1]).read_text(encoding="utf-8"))
        for p in problems:
            print(f"{argv[1]}: {p} (python -m speech_reps.models.catalog readme {argv[1]} rewrites it)",
                  file=sys.stderr)
        return 1 if problems else 0
    if len(argv) == 2 and argv[0] == "weights":
        spec = specs([argv[1]])[0]
        print(" ".join(w.file for w in spec.weights))
        return 0
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SpeechRepsError as e:
        sys.exit(f"catalog: {e}")
