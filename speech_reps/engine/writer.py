"""The feature writer in its own thread, so the model never waits for the disk.

Operations go through a bounded queue (at most ``depth`` batches ahead) and are applied in the
order they were put, so the archive and its journal are exactly what a writer called in line
would produce. An exception in the thread (disk full...) is raised in the caller at its next
``put`` or by ``check``; nothing after the failing operation is applied. ``stop`` waits for the
thread (call it before the writer is closed, also when unwinding from an error).
"""

import queue
import threading

_STOP = object()


class BackgroundWriter:
    def __init__(self, writer, depth=2):
        self.writer = writer
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._thread = threading.Thread(target=self._loop, name="feature-writer", daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            ops = self._queue.get()
            if ops is _STOP:
                return
            if self._error is not None:
                continue  # drain after a failure; the caller raises it
            try:
                self._apply(ops)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = e

    def _apply(self, ops):
        prepare = getattr(self.writer, "prepare", None)  # e.g. compress a batch at once
        if prepare is not None:
            prepare([op for op in ops if not callable(op)])
        for op in ops:
            if callable(op):  # work of this thread: what it returns is applied in its place
                self._apply(op() or [])
            else:
                name, *args = op
                getattr(self.writer, name)(*args)

    def put(self, ops):
        """Queue a list of writer calls, e.g. [("write", key, feats), ..., ("checkpoint",)]. An
        element may also be a function of no arguments, called in the writer's thread in its
        turn, whose returned list of calls (or None) is applied in its place (engine/run.py:
        a GPU batch's outputs, checked once their copy to the host is complete)."""
        self.check()
        self._queue.put(ops)

    def stop(self):
        """Wait until everything queued is applied (or dropped after an error)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def check(self):
        """Raise the thread's error, if it had one."""
        if self._error is not None:
            raise self._error
