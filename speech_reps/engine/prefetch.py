"""Reading utterances ahead of the model in worker processes (``--num-workers``).

``Loaders(num_workers)`` starts the workers at once, so that they start (each a fresh
interpreter importing the reading modules: 0.3-0.6 s) while the engine loads its model.
``loaders.read(utterances, spec)`` yields one ``inputs.Loaded`` per utterance (its model input,
or the AudioError that stopped it) in the order of ``utterances``, whatever the number of
workers: results come back in submission order, so everything downstream (batches, journal,
output) is the same for 0, 1 or 8 workers. A job reads in one or two passes (``--cmvn spk``'s
statistics first) with the same workers; ``close()`` ends them. ``read_ahead(utterances, spec,
num_workers)`` is one pass with workers of its own (0: in this process).

What is read ahead is bounded (a plain ``Pool.imap`` reads its whole input ahead): at most
``ahead`` utterances (8 per worker) submitted and not yet taken from the pool, and AHEAD_BYTES
of inputs ready and not yet taken by the engine. A thread of the engine's process takes the
results from the pool and submits more, so the workers go on while the engine is away: it takes
a batch's utterances at once, then leaves for the model's call (on a GPU, hundreds of
utterances, then tenths of a second), and when the submissions were made only as it took
results the workers sat idle meanwhile and the engine waited for them when it came back (3.8 s
of a 13 s GPU job).

Workers are started with "spawn": forking a process that has started torch's or TensorFlow's
thread pools can deadlock the child. The InputSpec travels pickled with each utterance (a few
hundred bytes): the workers exist before the model that decides it.
"""

import collections
import multiprocessing
import os
import pickle
import signal
import threading
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

from speech_reps.errors import AudioError, LoaderError
from speech_reps.engine.inputs import InputReader, Loaded

_reader, _reader_spec = None, None  # the worker's InputReader, and the pickled InputSpec it follows
AHEAD_BYTES = 256 << 20  # inputs ready and not yet taken (see the module's docstring)
RESUME = "what was finished is kept: rerun the same command to resume"


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


def _start_worker(parent):
    _die_with_parent(parent)
    # ctrl-c reaches the workers too (one process group): an idle worker would print
    # KeyboardInterrupt's traceback as it dies; SystemExit ends it quietly, and within an
    # utterance it comes back to the parent as that utterance's result (_result)
    signal.signal(signal.SIGINT, _exit_quietly)


def _exit_quietly(signum, frame):
    raise SystemExit(128 + signum)


def _started():
    """A task that only makes its worker start (Python spawns the pool's workers as tasks come)."""


def _read(spec, utt):
    global _reader, _reader_spec
    if spec != _reader_spec:  # the first utterance of a pass: its reader
        _reader, _reader_spec = _new_reader(pickle.loads(spec)), spec
    try:
        model_input, n = _reader.read(utt)
        return True, model_input, n
    except AudioError as e:  # sent back as fields: the exception itself does not unpickle
        return False, e.source, e.cause


def _new_reader(spec):
    if spec.frontend is not None and spec.frontend.backend == "torch":
        import torch

        torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    return InputReader(spec)


def read_ahead(utterances, spec, num_workers=0, ahead=None):
    """One Loaded per utterance, in order, read by workers of its own (module doc); ``ahead``:
    utterances submitted to the workers and not yet taken back (default 8 per worker)."""
    if num_workers <= 0:
        reader = InputReader(spec)
        for utt in utterances:
            yield reader.load(utt)
        return
    loaders = Loaders(num_workers)
    try:
        yield from loaders.read(utterances, spec, ahead)
    finally:  # also when the engine stops early (an error, ctrl-c): the thread and workers end first
        loaders.close()


class Loaders:
    """``num_workers`` loader processes, started now, and the thread that owns them: it makes the
    pool, then runs the passes ``read`` asks for, one after the other, each submitting its
    utterances and taking their results in order (``_Pass``).

    The pool is made, used and shut down in this one thread: a worker asks Linux to kill it when
    the thread that started it ends (PR_SET_PDEATHSIG is per thread), so the workers must not
    outlive it, nor it them."""

    def __init__(self, num_workers):
        self.num_workers = num_workers
        self._passes = collections.deque()
        self._current = None  # the pass being read
        self._early = None  # the pass ``begin`` started, until a ``read`` takes it over or drops it
        self._closed = False  # no more passes: close() was called, or the pool broke
        self._error = None  # what broke the pool: raised by the passes it stops
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="read-ahead", daemon=True)
        self._thread.start()

    def begin(self, utterances, spec):
        """Start reading ``utterances`` with ``spec`` before anyone asks (while the model loads,
        with ``InputSpec.before_model``'s guess). The next ``read`` takes this pass over when it
        asks for the same utterances with an equal spec, and else drops it first: what was read
        with a wrong guess is never used."""
        one = _Pass(utterances, spec, 8 * self.num_workers)
        with self._changed:
            if self._closed or self._passes or self._current is not None:
                return
            self._early = one
            self._passes.append(one)
            self._changed.notify_all()

    def _take_early(self, utterances, spec):
        """The pass ``begin`` started, when it reads ``utterances`` with ``spec``; else None, the
        early pass (if any) dropped: taken off the queue, or stopped where it was."""
        early, self._early = self._early, None
        if early is None:
            return None
        if early.reads(utterances, spec):
            return early
        with self._changed:
            queued = early in self._passes
            if queued:
                self._passes.remove(early)
        if queued:
            early.end()
        else:
            early.stop()
        return None

    def read(self, utterances, spec, ahead=None):
        """One Loaded per utterance of ``utterances``, in order (module doc). One pass at a time:
        passes run in turn, so a pass begun while another is unfinished would wait for ever."""
        one = self._take_early(utterances, spec)
        if one is None:
            one = self._queue(_Pass(utterances, spec, ahead or 8 * self.num_workers))
        try:
            yield from one.results()
        finally:
            one.stop()

    def _queue(self, one):
        """``one``, queued for the loaders' thread (or ended at once if the workers are gone)."""
        with self._changed:
            if self._passes or (self._current is not None and not self._current.done):
                raise RuntimeError("the loader workers are reading another pass; finish or close it first")
            if self._closed:
                one.end(self._error or RuntimeError("the loader workers are closed"))
            else:
                self._passes.append(one)
                self._changed.notify_all()
        return one

    def close(self):
        """Stop the pass being read, end the workers and the thread (waits for both)."""
        with self._changed:
            self._closed = True
            current = self._current
            self._changed.notify_all()
        if current is not None:  # its reader, if any, hears that it was cut short
            current.stop(RuntimeError("the loader workers were closed during a pass"))
        self._thread.join()

    def _serve(self):
        try:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.num_workers, mp_context=context, initializer=_start_worker,
                                     initargs=(os.getpid(),)) as pool:
                for _ in range(self.num_workers):
                    pool.submit(_started)
                while (one := self._next_pass()) is not None:
                    one.run(pool)
        except BaseException as e:  # noqa: BLE001 - raised in the engine's thread by the pass it stops
            self._error = e
        finally:
            with self._changed:
                self._closed, self._current = True, None
                left, self._passes = list(self._passes), collections.deque()
            for one in left:
                one.end(self._error or RuntimeError("the loader workers are closed"))

    def _next_pass(self):
        with self._changed:
            self._current = None
            while not self._passes and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            self._current = self._passes.popleft()
            return self._current


class _Pass:
    """One pass over ``utterances``: the loaders' thread submits them, at most ``in_flight`` not
    yet taken back, and takes their results in order into a queue of up to AHEAD_BYTES;
    ``results()`` yields them in the engine's thread, then raises what stopped the pass (a broken
    pool), if anything."""

    def __init__(self, utterances, spec, in_flight):
        self._utterances, self._spec_object = utterances, spec  # what ``reads`` compares
        self._todo = iter(utterances)
        self._spec = pickle.dumps(spec)
        self._in_flight = in_flight
        self._ready = collections.deque()  # (Loaded, its input's bytes)
        self._bytes = 0
        self._done = False  # the pass has put its last result
        self._error = None
        self._stopping = False
        self._changed = threading.Condition()

    @property
    def done(self):
        return self._done

    def reads(self, utterances, spec):
        """Whether this pass reads exactly ``utterances`` (the same objects, in order) with a
        spec equal to ``spec``."""
        if not isinstance(utterances, (list, tuple)) or len(utterances) != len(self._utterances):
            return False
        return spec == self._spec_object and all(a is b for a, b in zip(utterances, self._utterances))

    def run(self, pool):
        """In the loaders' thread. An error ends this pass (``results`` raises it); a broken pool
        is raised on, and ends the Loaders too."""
        try:
            self._feed(pool)
        except BaseException as e:
            if isinstance(e, BrokenExecutor):  # from a submit
                e = LoaderError(f"the loader workers stopped ({e}); {RESUME}")
            self.end(e)
            if isinstance(e, LoaderError):
                raise e
            return
        self.end()

    def end(self, error=None):
        with self._changed:
            if error is not None and self._error is None:
                self._error = error
            self._done = True
            self._changed.notify_all()

    def _feed(self, pool):
        pending = collections.deque()
        try:
            while not self._stopping:
                while len(pending) < self._in_flight:
                    utt = next(self._todo, None)
                    if utt is None:
                        break
                    pending.append((utt, pool.submit(_read, self._spec, utt)))
                if not pending:
                    return
                item = _result(*pending.popleft())  # waits for that utterance's worker
                if not self._put(item):
                    return
        finally:  # what is left: the pool then waits only for the utterances being read
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

    def stop(self, error=None):
        """The engine stops early (or has all it wanted): wait until the loaders' thread has
        left this pass. ``error``: what ``results`` raises if the pass was not over."""
        with self._changed:
            if error is not None and not self._done and self._error is None:
                self._error = error
            self._stopping = True
            self._changed.notify_all()
            while not self._done:
                self._changed.wait()


def _result(utt, future):
    try:
        ok, a, b = future.result()
    except SystemExit:  # the worker had a SIGINT while reading it (_start_worker)
        raise RuntimeError(f"a loader worker was interrupted (SIGINT) while reading {utt.utt}") from None
    except BrokenExecutor:  # a worker died: this utterance was one of those being read
        raise LoaderError(f"a loader worker died (killed, or out of memory?) while utterance {utt.utt} "
                          f"({utt.source}) was being read; {RESUME}") from None
    return Loaded(utt, a, b) if ok else Loaded(utt, error=AudioError(utt.utt, a, b))
