"""Reading utterances ahead of the model in worker processes (``--num-workers``).

``read_ahead(utterances, spec, num_workers)`` yields one ``inputs.Loaded`` per utterance (its
model input, or the AudioError that stopped it) in the order of ``utterances``, whatever the
number of workers: results
come back in submission order, so everything downstream (batches, journal, output) is the same
for 0, 1 or 8 workers. The utterances in flight or waiting are bounded (a plain ``Pool.imap``
reads its whole input ahead), but by a window that is wide where they are small: the engine
takes a batch's utterances at once, then leaves for the model's call (on a GPU, hundreds of
utterances, then tenths of a second), and a window of a few per worker left the workers idle
while it was away and the engine waiting for them when it came back. The window opens to
AHEAD_BYTES of the largest input seen so far, within 8 to 64 utterances per worker; before any
is seen, and for inputs of hundreds of MB (hour-long recordings), it is the 8 per worker it
always was.

Workers are started with "spawn": forking a process that has started torch's or TensorFlow's
thread pools can deadlock the child.
"""

import collections
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from speech_reps.errors import AudioError
from speech_reps.engine.inputs import InputReader, Loaded

_reader = None  # the worker's InputReader
AHEAD_BYTES = 256 << 20  # inputs read ahead, at the largest input's size (see the module's docstring)


def _die_with_parent(parent):
    """A worker must not outlive a killed parent (it would hold the job's stderr open, and a
    ``kill -9``'d job would leave it behind): Linux kills it with the parent; elsewhere a
    thread notices the parent is gone. A parent killed while this worker was still starting
    (before the prctl) is noticed by its pid: the worker then exits at once."""
    import ctypes
    import os
    import signal
    import threading
    import time

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
            if os.getppid() != parent:
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _start_worker(spec, parent):
    global _reader
    _die_with_parent(parent)
    if spec.frontend is not None and spec.frontend.backend == "torch":
        import torch

        torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    _reader = InputReader(spec)


def _read(utt):
    try:
        model_input, n = _reader.read(utt)
        return True, model_input, n
    except AudioError as e:  # sent back as fields: the exception itself does not unpickle
        return False, e.source, e.cause


def read_ahead(utterances, spec, num_workers=0, ahead=None):
    """One Loaded per utterance, in order; ``ahead``: the fewest utterances read ahead (8 per
    worker), widened up to 64 per worker while inputs are small (module docstring)."""
    if num_workers <= 0:
        reader = InputReader(spec)
        for utt in utterances:
            yield reader.load(utt)
        return
    fewest = ahead or 8 * num_workers
    most = max(fewest, 64 * num_workers)
    window, largest = fewest, 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_start_worker,
                             initargs=(spec, os.getpid())) as pool:
        pending = collections.deque()
        todo = iter(utterances)
        try:
            for utt in todo:
                pending.append((utt, pool.submit(_read, utt)))
                while len(pending) >= window:
                    item = _result(*pending.popleft())
                    if item.input is not None and item.input.nbytes > largest:
                        largest = item.input.nbytes
                        window = min(most, max(fewest, AHEAD_BYTES // largest))
                    yield item
            while pending:
                yield _result(*pending.popleft())
        finally:
            for _, future in pending:
                future.cancel()


def _result(utt, future):
    ok, a, b = future.result()
    return Loaded(utt, a, b) if ok else Loaded(utt, error=AudioError(utt.utt, a, b))
