"""Reading utterances ahead of the model in worker processes (``--num-workers``).

``read_ahead(utterances, spec, num_workers)`` yields one ``inputs.Loaded`` per utterance (its
model input, or the AudioError that stopped it) in the order of ``utterances``, whatever the
number of workers: results
come back in submission order, so everything downstream (batches, journal, output) is the same
for 0, 1 or 8 workers. What is read ahead is bounded (a plain ``Pool.imap`` reads its whole
input ahead): at most ``ahead`` utterances (8 per worker) submitted and not yet taken from the
pool, and AHEAD_BYTES of inputs ready and not yet taken by the engine. A thread of the engine's
process (``_Feeder``) takes the results from the pool and submits more, so the workers go on
while the engine is away: it takes a batch's utterances at once, then leaves for the model's
call (on a GPU, hundreds of utterances, then tenths of a second), and when the submissions
were made only as it took results the workers sat idle meanwhile and the engine waited for them
when it came back (3.8 s of a 13 s GPU job).

Workers are started with "spawn": forking a process that has started torch's or TensorFlow's
thread pools can deadlock the child.
"""

import collections
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from speech_reps.errors import AudioError
from speech_reps.engine.inputs import InputReader, Loaded

_reader = None  # the worker's InputReader
AHEAD_BYTES = 256 << 20  # inputs ready and not yet taken (see the module's docstring)


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
    """One Loaded per utterance, in order; ``ahead``: utterances submitted to the workers and not
    yet taken back (default 8 per worker); more are ready up to AHEAD_BYTES (module docstring)."""
    if num_workers <= 0:
        reader = InputReader(spec)
        for utt in utterances:
            yield reader.load(utt)
        return
    feeder = _Feeder(spec, num_workers, utterances, ahead or 8 * num_workers)
    try:
        yield from feeder.results()
    finally:  # also when the engine stops early (an error, ctrl-c): the thread and workers end first
        feeder.stop()


class _Feeder:
    """A thread that owns the worker pool: it submits ``utterances``, at most ``in_flight`` not
    yet taken back, and takes their results in order into a queue of up to AHEAD_BYTES;
    ``results()`` yields them, then raises what stopped the thread (a broken pool), if anything.

    The pool is made, used and shut down in this one thread: a worker asks Linux to kill it when
    the thread that started it ends (PR_SET_PDEATHSIG is per thread), so the workers must not
    outlive it, nor it them."""

    def __init__(self, spec, num_workers, utterances, in_flight):
        self._ready = collections.deque()  # (Loaded, its input's bytes)
        self._bytes = 0
        self._done = False  # the thread has put its last result
        self._error = None
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(spec, num_workers, iter(utterances), in_flight),
                                        name="read-ahead", daemon=True)
        self._thread.start()

    def _run(self, spec, num_workers, todo, in_flight):
        try:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_start_worker,
                                     initargs=(spec, os.getpid())) as pool:
                self._feed(pool, todo, in_flight)
        except BaseException as e:  # noqa: BLE001 - raised in the engine's thread, after the results before it
            self._error = e
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def _feed(self, pool, todo, in_flight):
        pending = collections.deque()
        try:
            while True:
                while len(pending) < in_flight:
                    utt = next(todo, None)
                    if utt is None:
                        break
                    pending.append((utt, pool.submit(_read, utt)))
                if not pending:
                    return
                item = _result(*pending.popleft())  # waits for that utterance's worker
                if not self._put(item):
                    return
        finally:  # the pool's shutdown then waits only for the utterances being read
            for _, future in pending:
                future.cancel()

    def _put(self, item):
        """Queue ``item`` once AHEAD_BYTES leave room (one item always fits); False: stopping."""
        size = item.input.nbytes if item.input is not None else 0
        with self._changed:
            while self._ready and self._bytes >= AHEAD_BYTES and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return False
            self._ready.append((item, size))
            self._bytes += size
            self._changed.notify_all()
        return True

    def results(self):
        while True:
            with self._changed:
                while not self._ready and not self._done:
                    self._changed.wait()
                if not self._ready:
                    if self._error is not None:
                        raise self._error
                    return
                item, size = self._ready.popleft()
                self._bytes -= size
                self._changed.notify_all()
            yield item

    def stop(self):
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()


def _result(utt, future):
    ok, a, b = future.result()
    return Loaded(utt, a, b) if ok else Loaded(utt, error=AudioError(utt.utt, a, b))
