"""Defaults that depend on the device, chosen by measurement (`python -m bench --peers`, tables
in docs/benchmarks.md): the CPU front end, the loader workers, and the batch size of each kind of
model. Users override each with its option (--fbank-backend, --num-workers, --batch-frames).
"""

import os

# Transformer encoders (self-attention over the whole utterance). On a CPU one utterance per call
# is as fast or faster: wav2vec 2.0 base on 2 cores, --batch-frames 1 against the former default
# 20000, interleaved (bench/batch_ab.py): 0.96x for 20000 in float32, 0.86x in bfloat16; batch 8
# at 0.78x of batch 1 on another 2-core CPU (docs/benchmarks.md, "Against what users would run
# instead"): a padded batch adds padding and moves more memory without using more cores.
TRANSFORMERS = ("wav2vec2", "hubert")  # one network; DeCoAR 2.0 and BERTphone are not measured yet
# On a GPU, seconds of audio per model call for the models measured there. DeCoAR's network
# alone on an H200 (issue 13) ran 2,331x / 10,498x / 12,911x real time at 32 / 128 / 256
# utterances per call: it needs >= 128 utterances of the usual 1-20 s (about 1,300 s) to fill
# the device; 1,600 s gives ~150. fbank/MFCC (the torch front end there) are cheap per frame.
# The others keep 20000 frames on a GPU until measured: their first convolution's output alone
# is 10 GB for 1,600 s of audio.
GPU_BATCH_SECONDS = 1600.0
GPU_LARGE_BATCHES = ("decoar", "fbank", "mfcc")
# Recurrent models on a GPU (DeCoAR's LSTMs): a call costs one step per frame of its longest
# utterance, each step about as long for 10 utterances as for 300 (a small matrix product per
# layer). Calls padded to at most 10% hold ~17 utterances of 1-20 s. So their calls hold more
# utterances of a wider spread of lengths: up to twice the shortest's (padding up to 50%,
# computed by the GPU in the same steps) and RECURRENT_BATCH_SECONDS of padded audio. Measured
# on an H200, the same 6 h job in bfloat16: 1,353x real time, against 831x with 1600 s calls
# padded to at most 10% (docs/benchmarks.md, section GPU).
RECURRENT = ("decoar",)
RECURRENT_BATCH_SECONDS = 3200.0
RECURRENT_MAX_PADDING = 0.5
# A model at 5,000x real time on a GPU takes 80 M samples a second: 160 MB/s of 16-bit audio
# read, decoded and pickled by the loader workers (engine/inputs.py sends it as int16). On an
# H200 host of 16 cores, fbank's 10 h job (the fastest consumer) ran 11,710x real time from its
# first batch with 8 workers against 10,526x with 4, waiting 1.6 s for them against 2.1 s (one
# A/B, docs/benchmarks.md, section GPU): half the cores, between 4 and 8.
GPU_NUM_WORKERS = (4, 8)  # the fewest and the most
CPU_BATCH_FRAMES = 20000  # other models: 200 s of 10 ms frames, as before (bounded memory)


def device_type(device):
    """'cuda' or 'cpu' of a torch device, a device string or None (the CPU)."""
    if device is None:
        return "cpu"
    return getattr(device, "type", str(device).split(":")[0])


def requested_device(model_options):
    """The device a model's options ask for ('cpu', 'cuda', 'cuda:1'), read as
    torch_device.resolve_device reads them, before the model exists (nothing checked or imported)."""
    device, gpu = model_options.get("device"), model_options.get("gpu")
    if device is not None:
        return str(device)
    try:
        return "cpu" if gpu is None or int(gpu) < 0 else f"cuda:{int(gpu)}"
    except (TypeError, ValueError):  # the model's own checks name it
        return "cpu"


def featurizer_device(featurizer):
    """Where a featurizer computes: its model's device, else its front end's."""
    device = getattr(featurizer, "device", None)
    if device is None and getattr(featurizer, "frontend", None) is not None:
        device = featurizer.frontend.device
    return device


def default_fbank_backend(device):
    """torch on a GPU (batched on the device, with the model's batches); on a CPU numpy, the
    vectorised front end: faster than kaldi-native-fbank, which computes frame by frame, and
    than torch on a CPU, whose import alone costs about what the computation of 30 min of
    audio does (docs/benchmarks.md)."""
    return "torch" if device_type(device) == "cuda" else "numpy"


def default_batch_frames(model, device, frame_shift=0.01):
    """Padded output frames per model call (``frame_shift``: the model's, in seconds)."""
    if device_type(device) == "cuda":
        if model in RECURRENT:
            return int(RECURRENT_BATCH_SECONDS / frame_shift)
        return int(GPU_BATCH_SECONDS / frame_shift) if model in GPU_LARGE_BATCHES else CPU_BATCH_FRAMES
    if model in TRANSFORMERS:
        return 1  # every utterance a call of its own
    return CPU_BATCH_FRAMES


def default_max_padding(model, device):
    """The most padding a model call may hold, as a fraction of its padded frames
    (engine/batching.py): MAX_PADDING, but RECURRENT_MAX_PADDING for recurrent models on a GPU."""
    from speech_reps.engine.batching import MAX_PADDING

    return RECURRENT_MAX_PADDING if model in RECURRENT and device_type(device) == "cuda" else MAX_PADDING


def default_num_workers(model, device):
    """Loader processes reading audio (and computing a CPU front end) ahead of the model.
    fbank/MFCC on a CPU: none, the front end runs in the main process: a spawned worker costs
    its own start-up (imports) and the model it would overlap with costs nothing (measured:
    docs/benchmarks.md). Models on a CPU: one, reading ahead while the model computes. On a
    GPU: half the cores the job may use within GPU_NUM_WORKERS, as the device outruns one reader."""
    if device_type(device) == "cuda":
        fewest, most = GPU_NUM_WORKERS
        try:  # the cores this job may use (a Slurm allocation, a cgroup), not the node's
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return min(most, max(fewest, cores // 2))
    if model in ("fbank", "mfcc"):
        return 0
    return 1
