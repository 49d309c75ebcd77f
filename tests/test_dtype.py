"""--dtype: every torch model runs in bfloat16 and float16, writes float32, and stays close to
float32 on real speech. (The errors themselves, at full model sizes, are in docs/benchmarks.md.)"""

import numpy as np
import pytest

from bertphone_files import random_weights as bertphone_weights
from bertphone_files import write_bertphone
from conftest import SPEECH_UTTS, golden_wav
from decoar2_files import random_state, write_checkpoint
from decoar_files import random_weights, write_torch_checkpoint
from fairseq_files import wav2vec2_checkpoint, wav2vec_checkpoint
from speech_reps.errors import ConfigError
from speech_reps.models import bf16_products
from speech_reps.models.registry import create
from speech_reps.engine.run import FileFeaturizer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("dtype")
    return {
        "decoar": write_torch_checkpoint(d / "decoar.pt", random_weights(input_dim=80, hidden=64, layers=2)),
        "wav2vec": wav2vec_checkpoint(d / "w2v.pt"),
        "wav2vec2": wav2vec2_checkpoint(d / "w2v2.pt"),
        "decoar2": write_checkpoint(d / "decoar2.pt", random_state()),
        "bertphone": write_bertphone(d / "b.params", bertphone_weights()),
        "ge2e": None,  # the wheel's real weights
    }


@pytest.mark.parametrize("bf16_units", [True, False], ids=["bf16-kernels", "bf16-products-in-float32"])
@pytest.mark.parametrize("model", ["decoar", "wav2vec", "wav2vec2", "decoar2", "bertphone", "ge2e"])
def test_half_precision_is_close_to_float32(model, bf16_units, checkpoints, monkeypatch):
    # both ways bfloat16 runs on a CPU (models/bf16_products.py), whatever this CPU has
    monkeypatch.setattr(bf16_products, "cpu_has_bf16_units", lambda: bf16_units)
    options = {} if checkpoints[model] is None else {"params": str(checkpoints[model])}
    resample = model == "bertphone"  # an 8 kHz model; the golden speech is 16 kHz
    reference = {u: FileFeaturizer(model, options, allow_resample=resample)(golden_wav(u)) for u in SPEECH_UTTS}
    for dtype in ("bfloat16", "float16") if bf16_units else ("bfloat16",):
        featurizer = FileFeaturizer(model, {**options, "dtype": dtype}, allow_resample=resample)
        assert featurizer.featurizer.describe().get("dtype", dtype) == dtype
        for utt in SPEECH_UTTS:
            out = featurizer(golden_wav(utt))
            ref = reference[utt]
            assert out.dtype == np.float32 and out.shape == ref.shape
            # bfloat16 keeps 8 bits of mantissa: errors of a few percent of the output's scale
            error = np.abs(out - ref).max() / np.abs(ref).max()
            assert error <= 0.1, (dtype, utt, error)
            assert not np.array_equal(out, ref)  # it really ran in the other precision


def test_unknown_dtype_is_an_error(checkpoints):
    with pytest.raises(ConfigError, match="--dtype float64: expected one of float32, tf32, bfloat16, float16"):
        create("decoar", params=str(checkpoints["decoar"]), dtype="float64")


@pytest.mark.parametrize("model", ["decoar", "wav2vec", "wav2vec2", "decoar2", "bertphone", "ge2e"])
def test_tf32_on_the_cpu_is_float32(model, checkpoints):
    """--dtype tf32 only lets a GPU's TF32 units in: on the CPU it computes exactly float32."""
    options = {} if checkpoints[model] is None else {"params": str(checkpoints[model])}
    resample = model == "bertphone"
    float32 = FileFeaturizer(model, options, allow_resample=resample)
    tf32 = FileFeaturizer(model, {**options, "dtype": "tf32"}, allow_resample=resample)
    assert tf32.featurizer.describe().get("dtype", "tf32") == "tf32"
    for utt in SPEECH_UTTS:
        assert np.array_equal(tf32(golden_wav(utt)), float32(golden_wav(utt))), utt
