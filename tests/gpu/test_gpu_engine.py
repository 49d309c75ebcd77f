"""Whole jobs on the GPU: the front end's features stay on the device into the model, and the
model's outputs stay there into the output path (pinned copies behind the next batch, or Kaldi
compression on the device). The archive equals each utterance featurized alone on the GPU, and
the compressed archive holds, byte for byte, the CPU compressor's bytes of the float32 one."""

import kaldiio
import numpy as np
import pytest

from conftest import golden_wav, make_data_dir, write_conf
from decoar_files import random_weights, write_torch_checkpoint
from speech_reps.engine.inputs import InputSpec
from speech_reps.engine.job import Job
from speech_reps.engine.run import FileFeaturizer, featurize_data_dir
from speech_reps.kaldi.compress import compress
from speech_reps.models.registry import create, get_model_class

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"
WAVS = ["spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short"]


@pytest.mark.parametrize("model", ["decoar", "fbank"])
def test_a_job_on_the_gpu_equals_its_utterances_alone_and_compresses_as_the_cpu(model, tmp_path):
    options = {"device": DEVICE}
    if model == "decoar":
        options["params"] = str(write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=40)))
    else:  # without dither: the same features every run
        options["feature_config"] = write_conf(tmp_path / "fbank.conf", "--dither=0")
    wavs = {f"u{i:02d}": golden_wav(WAVS[i % 4]) for i in range(12)}
    data = make_data_dir(tmp_path / "data", {u: str(w) for u, w in wavs.items()})
    out = {}
    for compressed in (False, True):
        out[compressed] = tmp_path / f"out_{compressed}"
        # with workers, which read while the model loads (InputSpec.before_model), and without
        summary = featurize_data_dir(Job(data, out[compressed], model=model, model_options=options,
                                         compress=compressed, batch_frames=2000, progress=False,
                                         num_workers=2 if compressed else 0))
        assert (summary.done, summary.failed) == (12, 0)
    floats = dict(kaldiio.load_scp(str(out[False] / "feats.scp")))
    alone = FileFeaturizer(model, options)
    for utt, wav in wavs.items():
        assert np.abs(floats[utt] - alone(wav)).max() <= 1e-5, utt
    ark = (out[True] / "feats.ark").read_bytes()
    for line in (out[True] / "feats.scp").read_text().splitlines():
        utt, where = line.split()
        offset = int(where.rsplit(":", 1)[1])
        want = b"\0B" + bytes(compress(floats[utt]))
        assert ark[offset:offset + len(want)] == want, utt


@pytest.mark.parametrize("model", ["decoar", "fbank"])
def test_the_inputs_foreseen_before_the_model_loads_are_its_own_on_the_gpu(model, tmp_path):
    """On a GPU the loader workers of a fbank-input model only read audio: the spec guessed
    before the model exists is the one it gives, so what they read while it loaded is used."""
    options = {"device": DEVICE}
    if model == "decoar":
        options["params"] = str(write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=40)))
    featurizer = create(model, **options)
    assert InputSpec.before_model(get_model_class(model), options) == InputSpec.for_model(featurizer)
