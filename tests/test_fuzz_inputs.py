"""Property and fuzz tests of the inputs whose space is too large for a catalogue: table bytes,
option and segment numbers, and weight files with random bytes flipped. Seeded (stdlib
``random``), so a failure reproduces; each test runs in a few seconds."""

import io
import random
import zipfile

import numpy as np
import pytest
import soundfile as sf

from conftest import golden_wav, golden_wave, make_data_dir
from decoar_files import mxnet_names, random_weights, write_params, write_torch_checkpoint
from speech_reps.errors import AudioError, ConfigError, DataDirError
from speech_reps.frontend import FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.frontend.options import TABLE
from speech_reps.kaldi import AudioLoader, DataDir, Utterance
from speech_reps.kaldi.options import OptionLine
from speech_reps.kaldi.tables import read_table


def flipped(data, rng):
    """``data`` with 1 to 4 random bytes changed (single bits or whole bytes)."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] ^= (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(1, 256)
    return bytes(data)


def test_any_table_bytes_give_file_line_problems(tmp_path):
    rng = random.Random(17)
    alphabet = [b"a", b"b", b" ", b"\t", b"\n", b"\r", b"\xff", b"\xc3\xa9", b"\xc3", b"\xef\xbb\xbf", b"\x00", b"1"]
    path = tmp_path / "utt2spk"
    for _ in range(500):
        path.write_bytes(b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        problems = []
        rows = read_table(path, problems, min_fields=1, max_fields=1)
        assert all(p.startswith(f"{path}:") for p in problems), problems
        assert all(isinstance(r.key, str) and r.where.startswith(f"{path}:") for r in rows)
        if b"\xef\xbb\xbf" == path.read_bytes()[:3]:
            assert any("byte order mark" in p for p in problems)


NUMBERS = ["nan", "inf", "-inf", "0", "-0", "1e308", "-1", "1e-9", "1", "2", "3", "1e30"]


def _random_value(default, rng):
    if isinstance(default, int):
        return str(rng.choice([0, 1, 2, 3, -1, 10**6, 2**31, default, rng.randint(-5, 300)]))
    if rng.random() < 0.4:
        return rng.choice(NUMBERS)
    return repr(default * rng.choice([0.5, 2, 10, 100, 1e-3, -1]) + rng.uniform(-1, 1))


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_option_numbers_are_an_error_up_front_or_give_finite_features(backend):
    """Every numeric front-end option, set at random (non-finite, zero, negative, huge): either
    a ConfigError naming the file, line and option before any work, or finite features."""
    rng = random.Random(3)
    wave = np.random.default_rng(0).normal(scale=1000, size=8000).astype(np.float32)
    accepted = 0
    for _ in range(200 if backend == "native" else 80):
        kind = rng.choice(["fbank", "mfcc"])
        numeric = [n for n, o in TABLE[kind].items() if type(o.default) in (int, float) and o.native
                   and n != "sample-frequency"]  # the model's rate: checked against the audio
        names = rng.sample(numeric, rng.randint(1, 3))
        given = {n: OptionLine(n, _random_value(TABLE[kind][n].default, rng), f"f.conf:{i + 1}")
                 for i, n in enumerate(names)}
        try:
            options = FeatureOptions(kind, given)
        except ConfigError as e:
            line = given[str(e).split(": --", 1)[1].split("=")[0]]
            assert str(e).startswith(f"{line.source}: --{line.name}={line.value}: "), e
            continue
        feats = FrontEnd(FrontEndSpec(options, backend=backend)).features("u", wave)
        assert np.isfinite(feats).all(), {n: v.value for n, v in given.items()}
        accepted += 1
    assert accepted > 20  # the property was exercised on both sides


def test_segment_times_fail_that_utterance_or_cut_as_extract_segments(tmp_path):
    rng = random.Random(5)
    times = ["nan", "inf", "-inf", "-1", "0", "0.5", "1.7", "2.2", "3", "1e308", "-0", "1e-9"]
    n = len(golden_wave("spk3-chirp"))
    for trial in range(40):
        lines = sorted({f"s{i:02d} rec {rng.choice(times)} {rng.choice(times + ['-1'])}" for i in range(8)})
        data = make_data_dir(tmp_path / f"d{trial}", {"rec": golden_wav("spk3-chirp")}, segments="\n".join(lines) + "\n")
        loaded = DataDir.load(data, lenient=True)
        loader = AudioLoader(16000)
        for utt in loaded.utterances:
            try:
                wave = loader.load(utt)
            except AudioError as e:
                assert str(e).startswith(f"utterance {utt.utt} ("), e
                continue
            start = int(utt.start * 16000)
            end = n if utt.end == -1 else min(int(utt.end * 16000), n)
            assert np.array_equal(wave, golden_wave("spk3-chirp")[start:end])


def _only_our_error(load, good, path, rng, iterations):
    """Load ``iterations`` damaged copies of ``good``: each must load or raise one ConfigError
    line naming the file; returns how many loaded (flips in tensor data load, as they should)."""
    loaded = 0
    for _ in range(iterations):
        path.write_bytes(flipped(good, rng))
        try:
            load(path)
            loaded += 1
        except ConfigError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e), e
    return loaded


def test_damaged_mxnet_params_give_only_our_error(tmp_path):
    from speech_reps.models.decoar_checkpoint import load_decoar_weights

    good = write_params(tmp_path / "m.params", mxnet_names(random_weights(8, 4, 2), "structural")).read_bytes()
    loaded = _only_our_error(load_decoar_weights, good, tmp_path / "f.params", random.Random(1), 2000)
    assert 0 < loaded < 2000


def test_damaged_pytorch_checkpoints_give_only_our_error(tmp_path):
    import torch

    from speech_reps.models.decoar_checkpoint import load_decoar_weights
    from speech_reps.models.ge2e_weights import expected_shapes, load_ge2e_weights

    good = write_torch_checkpoint(tmp_path / "d.pt", random_weights(8, 4, 1)).read_bytes()
    assert 0 < _only_our_error(load_decoar_weights, good, tmp_path / "f.pt", random.Random(2), 500) < 500
    torch.save({"step": 1, "model_state": {k: torch.randn(s) for k, s in expected_shapes(4, 4, 1, 3).items()}},
               tmp_path / "g.pt")
    good = (tmp_path / "g.pt").read_bytes()
    assert 0 < _only_our_error(load_ge2e_weights, good, tmp_path / "f.pt", random.Random(3), 300) < 300


def test_damaged_fairseq_config_and_pickle_give_only_our_error(tmp_path):
    """Flips in the pickle of a wav2vec 2.0 checkpoint (its config and tensor records), through
    to building the net: a size in the config may not allocate more than the file could hold."""
    from fairseq_files import wav2vec2_checkpoint
    from speech_reps.models.registry import create

    good = wav2vec2_checkpoint(tmp_path / "w.pt").read_bytes()
    pkl = next(i for i in zipfile.ZipFile(io.BytesIO(good)).infolist() if i.filename.endswith("data.pkl"))
    start = pkl.header_offset + 30 + len(pkl.filename.encode()) + len(pkl.extra)
    head, body, tail = good[:start], good[start:start + pkl.compress_size], good[start + pkl.compress_size:]
    assert pkl.compress_type == zipfile.ZIP_STORED  # so flips reach the unpickler
    rng = random.Random(4)
    path = tmp_path / "f.pt"
    for _ in range(25):
        path.write_bytes(head + flipped(body, rng) + tail)
        try:
            create("wav2vec2", params=path)
        except ConfigError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e), e


def test_damaged_audio_containers_fail_that_utterance(tmp_path):
    """Random flips in WAV/FLAC/MP3 headers and data: a wave or one AudioError, never another
    exception."""
    rng = random.Random(6)
    x = golden_wave("spk1-utt1").astype(np.int16)[:16000]
    path = tmp_path / "a"
    for fmt in ("WAV", "FLAC", "MP3"):
        buf = io.BytesIO()
        sf.write(buf, x, 16000, format=fmt)
        good = buf.getvalue()
        for _ in range(60):
            damaged = bytearray(good)
            for _ in range(rng.randint(1, 4)):  # mostly in the first 64 bytes: the header
                damaged[rng.randrange(64 if rng.random() < 0.8 else len(good))] = rng.randrange(256)
            path.write_bytes(bytes(damaged))
            try:
                AudioLoader(16000).load(Utterance("u", "u", str(path)))
            except AudioError:
                pass


def test_only_data_dir_errors_from_random_segments_text(tmp_path):
    rng = random.Random(7)
    pieces = ["rec", "s1", "s2", "0", "1", "nan", "x", "-1", " ", " ", "\n", "1e999", "\xe9", "2"]
    for trial in range(100):
        data = make_data_dir(tmp_path / f"d{trial}", {"rec": golden_wav("spk3-chirp")},
                             segments="".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))))
        try:
            DataDir.load(data, lenient=True)
        except DataDirError as e:
            assert all(p.startswith(f"{data}/segments") for p in e.problems), e.problems


def _weight_files(tmp_path):
    """{name: (model, a good small weights file)} of every weights format a model reads: MXNet
    .params with DeCoAR's and BERTphone's Gluon names, a plain torch state dict (DeCoAR .pt),
    resemblyzer's checkpoint (GE2E), fairseq checkpoints (wav2vec 1.0, wav2vec 2.0, DeCoAR 2.0)."""
    import torch

    import bertphone_files
    import decoar2_files
    from fairseq_files import wav2vec2_checkpoint, wav2vec_checkpoint
    from speech_reps.models.ge2e_weights import expected_shapes as ge2e_shapes

    torch.manual_seed(0)
    torch.save({"step": 1, "model_state": {k: torch.randn(s) for k, s in ge2e_shapes(40, 8, 1, 4).items()}},
               tmp_path / "ge2e.pt")
    return {
        "decoar-params": ("decoar", write_params(tmp_path / "d.params", mxnet_names(random_weights(8, 4, 1)))),
        "decoar-pt": ("decoar", write_torch_checkpoint(tmp_path / "d.pt", random_weights(8, 4, 1))),
        "bertphone": ("bertphone", bertphone_files.write_bertphone(tmp_path / "b.params", bertphone_files.random_weights(
            units=24, hidden=12, layers=1, max_length=16))),
        "ge2e": ("ge2e", tmp_path / "ge2e.pt"),
        "wav2vec": ("wav2vec", wav2vec_checkpoint(tmp_path / "w.pt")),
        "wav2vec2": ("wav2vec2", wav2vec2_checkpoint(tmp_path / "w2.pt")),
        "decoar2": ("decoar2", decoar2_files.write_checkpoint(
            tmp_path / "d2.pt", decoar2_files.random_state(encoder_embed_dim=24, encoder_layers=1,
                                                         encoder_ffn_embed_dim=12, conv_pos=4))),
    }


def _refused_in_one_line(model, path, **options):
    """``create(model, params=path)`` must raise a one-line ConfigError starting with the path."""
    from speech_reps.models.registry import create

    with pytest.raises(ConfigError) as e:
        create(model, params=str(path), **options)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value), (model, str(e.value))


def test_every_weights_format_truncated_garbage_or_foreign_is_one_line(tmp_path):
    """Each format through its model's loader, cut at random lengths, replaced by random bytes,
    or swapped for another format's file: one ConfigError line naming the file, never a traceback."""
    rng = random.Random(8)
    files = _weight_files(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    options = {"bertphone": {"feature_config": None}}
    for name, (model, good) in files.items():
        data = good.read_bytes()
        cuts = [0, 1, 7, 8, 23, 24, len(data) // 2, len(data) - 1] + [rng.randrange(len(data)) for _ in range(6)]
        for i, cut in enumerate(cuts):
            path = bad / f"{name}.cut{i}"
            path.write_bytes(data[:cut])
            _refused_in_one_line(model, path, **options.get(name, {}))
        for size in (16, 4096):
            path = bad / f"{name}.garbage{size}"
            path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))
            _refused_in_one_line(model, path)
        for other, (other_model, other_file) in files.items():
            if other_model != model:
                path = bad / f"{name}.from-{other}"
                path.write_bytes(other_file.read_bytes())
                _refused_in_one_line(model, path)


def test_every_weights_format_with_wrong_shapes_lists_them_all(tmp_path):
    """A random matrix (or conv kernel) of each format given a wrong shape, a bias removed, a foreign tensor
    added: one error line naming the file with all three problems (the strict loader's)."""
    import torch

    rng = random.Random(9)
    files = _weight_files(tmp_path)
    for name, (model, good) in files.items():
        path = tmp_path / f"{name}.shaped"
        if good.suffix == ".params":
            from speech_reps.models.formats.mxnet import read_params

            tensors = dict(read_params(good))
            write = lambda t: write_params(path, t)  # noqa: E731
        else:
            ckpt = torch.load(good, weights_only=False)
            key = "model_state" if "model_state" in ckpt else "model"
            tensors = dict(ckpt[key])
            write = lambda t: torch.save({**ckpt, key: t}, path)  # noqa: E731
        reshaped = rng.choice(sorted(n for n, v in tensors.items() if len(v.shape) >= 2))
        dropped = rng.choice(sorted(n for n, v in tensors.items() if len(v.shape) == 1))
        value = tensors[reshaped]
        tensors[reshaped] = value[:-1] if isinstance(value, np.ndarray) else value[:-1].clone()
        del tensors[dropped]
        tensors["stray.weight"] = np.zeros(3, np.float32) if good.suffix == ".params" else torch.zeros(3)
        write(tensors)
        from speech_reps.models.registry import create

        with pytest.raises(ConfigError) as e:
            create(model, params=str(path))
        message = str(e.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        assert "missing: " in message and "unexpected: " in message and "stray.weight" in message, (name, message)
        assert "wrong shape: " in message, (name, message)
