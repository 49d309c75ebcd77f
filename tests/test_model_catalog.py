"""One place names a model: its declaration. A toy model added through that path only (a module
named in $SPEECH_REPS_MODEL_MODULES, with its conf) is seen by the CLI, steps/featurize.py and
featurize.sh, ``speech-reps models`` and the README check; the toolkit's lists cannot drift."""

import dataclasses
import importlib
import inspect
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, golden_data_dir, golden_wav, golden_wave, run_tool
from test_jobs import FEATURIZE_SH, bash

SPEECH_REPS = Path(sys.executable).parent / "speech-reps"
FEATURIZE = REPO / "steps" / "featurize.py"

TOY = '''
"""A toy model: the mean of each 10 ms hop of the waveform, times --gain, in 2 dims."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech_reps.models.base import Featurizer
from speech_reps.models.config import load_config
from speech_reps.models.declaration import ModelSpec, Option
from speech_reps.models.registry import register


@dataclass
class ToyConfig:  # values: toy.yaml, beside this file
    gain: float
    offset: float


@register(ModelSpec(
    name="toy", summary="a toy: 10 ms means", dim="2", frame_shift="10 ms", input_rate=16000,
    input="16 kHz waveform", conf=str(Path(__file__).with_name("toy.yaml")),
    options=("config", Option("gain", type=float, metavar="G", help="toy: scale of the means"))))
class Toy(Featurizer):
    input = "waveform"
    sample_rate = 16000
    frame_shift = 0.01
    dim = 2

    @classmethod
    def from_options(cls, config=None, gain=None):
        conf = load_config(ToyConfig, config, "toy")
        model = cls()
        model.gain = conf.gain if gain is None else gain
        model.offset = conf.offset
        return model

    def num_frames(self, num_samples):
        return num_samples // 160

    def featurize(self, batch):
        out = []
        for wave in batch.inputs:
            t = len(wave) // 160
            means = np.asarray(wave[:160 * t], dtype=np.float64).reshape(t, 160).mean(1) * self.gain
            out.append(np.stack([means, means + self.offset], 1).astype(np.float32))
        return out
'''


@pytest.fixture
def toy_env(tmp_path, monkeypatch):
    """The toy's module and conf in a folder of their own; the programs run below find it
    through $SPEECH_REPS_MODEL_MODULES (and PYTHONPATH)."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "toy_model.py").write_text(TOY)
    (plugin / "toy.yaml").write_text("gain: 0.5  # scale of the means\noffset: 1.0\n")
    monkeypatch.setenv("SPEECH_REPS_MODEL_MODULES", "toy_model")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")])))


def expected_toy(gain, offset=1.0):
    wave = golden_wave("spk1-utt1")
    t = len(wave) // 160
    means = wave[:160 * t].astype(np.float64).reshape(t, 160).mean(1) * gain
    return np.stack([means, means + offset], 1).astype(np.float32)


def test_a_toy_model_declared_once_is_everywhere(tmp_path, toy_env):
    run = run_tool
    # speech-reps models and featurize (its option, its conf's default, an option it does not take)
    table = run(SPEECH_REPS, "models").stdout.splitlines()
    assert [line.split()[:5] for line in table if line.startswith("toy ")] == [["toy", "2", "10", "ms", "16000"]]
    help_text = run(SPEECH_REPS, "featurize", "--help").stdout
    assert "--gain G" in help_text and "toy: scale of the means [toy]" in help_text
    run(SPEECH_REPS, "featurize", "--model", "toy", "--in-wav", golden_wav("spk1-utt1"), "--out-npy", tmp_path / "a.npy")
    assert np.array_equal(np.load(tmp_path / "a.npy"), expected_toy(0.5))
    run(SPEECH_REPS, "featurize", "--model", "toy", "--gain", "3", "--in-wav", golden_wav("spk1-utt1"),
        "--out-npy", tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), expected_toy(3.0))
    proc = run(SPEECH_REPS, "featurize", "--model", "toy", "--layer", "2", "--in-wav", golden_wav("spk1-utt1"),
               "--out-npy", tmp_path / "c.npy", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "speech-reps: model toy does not take --layer"

    # steps/featurize.py's options, and featurize.sh, which takes them from there
    assert "gain" in run(FEATURIZE, "--option-names").stdout.split()
    proc = bash(f"{FEATURIZE_SH} --help")
    assert "--gain G" in proc.stderr and "toy" in proc.stderr
    data = golden_data_dir(tmp_path / "data")
    proc = bash(f"{FEATURIZE_SH} --nj 2 --compress false --model toy --gain 3 {data} {tmp_path}/log {tmp_path}/feats")
    assert proc.returncode == 0, proc.stderr
    import kaldiio

    feats = {k: np.array(v) for k, v in kaldiio.load_scp(str(data / "feats.scp")).items()}
    assert np.array_equal(feats["spk1-utt1"], expected_toy(3.0))

    # the README check names the row it lacks
    proc = run(sys.executable, "-m", "speech_reps.models.catalog", "check-readme", REPO / "README.md", check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"{REPO}/README.md: the table lacks toy (python -m speech_reps.models.catalog "
                                        f"readme {REPO}/README.md rewrites it)"]


def test_readme_table_is_the_declarations():
    from speech_reps.models.catalog import readme_problems

    assert readme_problems((REPO / "README.md").read_text(encoding="utf-8")) == []


def test_confs_are_the_only_defaults():
    """Every model's conf/<model>.yaml exists and sets exactly its config class's keys (which
    hold no values), and every model yaml in conf/ belongs to a declared model."""
    from speech_reps.models.config import load_config
    from speech_reps.models.registry import documented_model_names, get_model_class

    checked = set()
    for name in documented_model_names():
        cls = get_model_class(name)
        path = cls.spec.conf_path()
        if path is None:
            continue
        assert path.is_file(), path
        module = importlib.import_module(cls.__module__)
        configs = [c for _, c in inspect.getmembers(module, dataclasses.is_dataclass)
                   if c.__module__ == module.__name__ and c.__name__.endswith("Config")]
        assert len(configs) == 1, (name, configs)
        fields = dataclasses.fields(configs[0])
        assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields)
        load_config(configs[0], None, name)  # every key there, no other
        checked.add(path.name)
    assert checked == {p.name for p in (REPO / "conf").glob("*.yaml")}


def test_lists_cannot_drift():
    """The CLI, featurize.py (and so featurize.sh), download tooling and the bench read the
    declarations: each list equals what the declarations say."""
    from bench.__main__ import bench_models
    from speech_reps.cli_args import model_option_table
    from speech_reps.download import artifacts
    from speech_reps.models.registry import documented_model_names, get_model_class, specs

    names = documented_model_names()
    assert names == ["bertphone", "decoar", "decoar2", "fbank", "frill", "ge2e", "hubert", "mfcc", "trill",
                     "trill-distilled", "wav2vec", "wav2vec2"]
    help_text = run_tool(FEATURIZE, "--help").stdout
    assert "{" + ",".join(names) + "}" in help_text.replace("\n", "").replace(" ", "")
    option_names = run_tool(FEATURIZE, "--option-names").stdout.split()
    for option, models in model_option_table():
        assert option.dest in option_names
        for name in models:  # the model takes what the CLI offers for it (register() checks it too)
            assert option.name in inspect.signature(get_model_class(name).from_options).parameters
    declared = {name: w for spec in specs() for name, w in spec.downloads()}
    assert {n: w for n, (_, w) in artifacts().items()} == declared
    usage = run_tool(REPO / "utils" / "download_models.sh", check=False).stderr
    assert f"(names: {' '.join(sorted(declared))})" in usage
    assert set(names) <= set(bench_models())
    assert "for m in decoar" not in (REPO / "Makefile").read_text()  # the demo's list comes from the declarations


def test_weights_resolve_through_the_artifacts_location(tmp_path, monkeypatch):
    """Default weights are found under $SPEECH_REPS_ARTIFACTS whatever the working directory;
    --params is relative to the working directory."""
    from decoar_files import random_weights, write_torch_checkpoint
    from speech_reps.models.registry import create

    art = tmp_path / "art"
    art.mkdir()
    write_torch_checkpoint(art / "checkpoint_decoar.pt", random_weights(8, 4, 1))
    conf = tmp_path / "d.yaml"
    conf.write_text("params: checkpoint_decoar.pt\n")
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(art))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = create("decoar", config=str(conf))
    assert model.params_path == str(art / "checkpoint_decoar.pt")
    monkeypatch.chdir(art)
    assert create("decoar", params="checkpoint_decoar.pt").params_path == str(art / "checkpoint_decoar.pt")


def test_models_table_says_where_weights_are_or_how_to_get_them(tmp_path, monkeypatch):
    from speech_reps.models.catalog import models_table

    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path))

    def row(name):
        return next(line for line in models_table().splitlines() if line.split()[0] == name)

    assert "get: utils/download_models.sh wav2vec2" in row("wav2vec2")
    assert "get: utils/download_models.sh decoar or utils/download_models.sh decoar-pt" in row("decoar")
    (tmp_path / "wav2vec_small.pt").write_bytes(b"")
    (tmp_path / "checkpoint_decoar.pt").write_bytes(b"")
    assert f"found: {tmp_path}/wav2vec_small.pt" in row("wav2vec2")
    assert f"found (pass it with --params): {tmp_path}/checkpoint_decoar.pt" in row("decoar")
    assert row("fbank").split()[-2:] == ["needed", "-"]
    assert "tensorflow: " in row("trill")


def test_a_library_caller_s_string_values_are_read_as_the_command_line_reads_them(dither0):
    """model_options={"norm_vars": "false"} is False (a non-empty string was true: variances
    normalised, silently), and a value the command line refuses is refused."""
    from conftest import golden_wav
    from speech_reps.engine.run import featurize_file
    from speech_reps.errors import ConfigError

    wav, kw = golden_wav("spk1-utt1"), {"feature_config": dither0, "cmvn": "utt"}
    as_text = featurize_file(wav, model="fbank", model_options={**kw, "norm_vars": "false"})
    assert np.array_equal(as_text, featurize_file(wav, model="fbank", model_options={**kw, "norm_vars": False}))
    assert not np.array_equal(as_text, featurize_file(wav, model="fbank", model_options={**kw, "norm_vars": True}))
    with pytest.raises(ConfigError, match=r"^--norm-vars 'maybe': expected true or false, got 'maybe'$"):
        featurize_file(wav, model="fbank", model_options={"norm_vars": "maybe"})


def test_a_model_config_s_values_have_their_key_s_type(tmp_path):
    """YAML's "false" (quoted) is a string, and was read as true; 'maybe' was taken too."""
    from speech_reps.errors import ConfigError
    from speech_reps.models.config import load_config
    from speech_reps.models.decoar import DeCoARConfig

    for text, error in (('norm_vars: "false"\n', "norm_vars: expected true or false, got 'false'"),
                        ("norm_vars: maybe\n", "norm_vars: expected true or false, got 'maybe'")):
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(ConfigError, match=rf"c.yaml: {error}$"):
            load_config(DeCoARConfig, tmp_path / "c.yaml", "decoar")
    (tmp_path / "c.yaml").write_text("norm_vars: false\n")
    assert load_config(DeCoARConfig, tmp_path / "c.yaml", "decoar").norm_vars is False
