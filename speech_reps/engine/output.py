"""Model outputs handed to the writer thread, without stopping the GPU.

A model's ``featurize`` returns float32 matrices: numpy arrays, or torch tensors on any device.
``OutputPath.take(outputs)`` gives a ``HostOutputs`` whose ``arrays`` the writer thread reads
after ``wait()`` and gives back with ``release()``:

- numpy arrays and CPU tensors: as they are (a tensor's numpy view, no copy); nothing to wait for.
- CUDA tensors: left on the device, behind an event recorded after the model's work; the writer
  thread takes them on a stream of the output path's own. Compressed (``--compress true``), the
  writer compresses them on the device and copies only the bytes (kaldi/compress.py: a quarter
  of the floats'); as float32 rows, it copies them through a small ring of page-locked blocks
  and writes each from its block (kaldi/host_staging.py). Either way the main thread only
  queues work, and the host holds a matrix or a few, never a whole batch. (Before, a whole
  batch was copied into page-locked buffers here: making them ran at about 1 GB/s and stalled
  the model for 9.7 s of a 26 s job on an H100 host.)

Nothing here imports torch unless a tensor arrives.
"""

import threading

import numpy as np

from speech_reps.kaldi.compress import is_tensor
from speech_reps.models.torch_device import host_array


def on_cuda(x):
    return is_tensor(x) and x.is_cuda


class HostOutputs:
    """One batch's outputs as the writer takes them: ``wait()``, then ``arrays``.
    ``stream``: for CUDA tensors left on the device (compressed or copied out by the writer), the
    output path's own CUDA stream, for the writer thread's device work on them (``writer_stream``)."""

    def __init__(self, arrays, event=None, stream=None, finite=None, on_release=None):
        self.arrays = arrays
        self._event = event
        self._on_release = on_release
        self.stream = stream
        self._finite = finite  # (pinned bool tensor, index of each output in it or None)

    def finite(self, i):
        """Whether output ``i`` holds no NaN or Inf (after ``wait``): a CUDA output's flag was
        computed on its device with the batch and copied with it; others are checked here."""
        if self._finite is not None and self._finite[1][i] is not None:
            return bool(self._finite[0][self._finite[1][i]])
        return all_finite(self.arrays[i])

    @property
    def deferred(self):
        """True for outputs on a device: the model's work on them may still be running."""
        return self._event is not None

    def wait(self):
        if self._event is not None:
            self._event.synchronize()

    def writer_stream(self):
        """Called in the writer's thread after ``wait``: that thread's CUDA work (finiteness
        checks, the compressor, the copies to the host) goes on ``stream`` from now on. On the
        default stream, each of its synchronisations would also wait for the model's next
        batch, queued there meanwhile; on a stream of its own it waits for its own work only
        (the outputs are complete: ``wait`` saw the event recorded after them)."""
        if self.stream is not None:
            import torch

            if torch.cuda.current_stream(self.stream.device) != self.stream:
                torch.cuda.set_stream(self.stream)

    def release(self):
        """The writer is done with these outputs (their device memory may go)."""
        if self._on_release is not None:
            self._on_release()
            self._on_release = None


class DeviceBudget:
    """Bytes of model outputs left on a device for the writer thread: ``acquire(n)`` waits while
    others hold some and ``n`` more would pass ``limit`` (one batch always goes through);
    ``release(n)`` gives them back. ``check``: called while waiting, to raise the writer's error
    (a writer that failed never releases)."""

    def __init__(self, limit, check=None):
        self.limit = limit
        self._check = check
        self._held = 0
        self._changed = threading.Condition()

    def acquire(self, n):
        with self._changed:
            while self._held > 0 and self._held + n > self.limit:
                self._changed.wait(0.2)
                if self._check is not None:
                    self._check()
            self._held += n

    def release(self, n):
        with self._changed:
            self._held -= n
            self._changed.notify_all()


DEVICE_SHARE = 4  # outputs waiting for the writer may hold a quarter of the device's memory


class OutputPath:
    """``take(outputs)`` -> HostOutputs (see the module's text). The outputs a GPU keeps for the
    writer are bounded (DeviceBudget: a quarter of its memory): the writer queue holds a few
    batches, and on a small GPU a few of DeCoAR's (2.6 GB each) would leave the model too
    little. ``check``: raises the writer's error while ``take`` waits for it."""

    def __init__(self, check=None):
        self._writer_stream = None  # the writer thread's device work (made at the first CUDA batch)
        self._check = check
        self._budget = None  # made at the first CUDA batch

    def take(self, outputs):
        tensors = [x for x in outputs if on_cuda(x)]
        if not tensors:
            return HostOutputs([host_array(x) for x in outputs])
        import torch

        device = tensors[0].device
        finite = _finite_flags(torch, outputs)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(device))
        if self._writer_stream is None:
            self._writer_stream = _own_stream(torch, device)
            limit = torch.cuda.get_device_properties(device).total_memory // DEVICE_SHARE
            self._budget = DeviceBudget(limit, self._check)
        for x in tensors:  # their memory is not reused before the writer's work on them ran
            x.record_stream(self._writer_stream)
        held = device_bytes(tensors)
        self._budget.acquire(held)
        return HostOutputs(list(outputs), done, stream=self._writer_stream, finite=finite,
                           on_release=lambda: self._budget.release(held))


def device_bytes(tensors):
    """The device memory ``tensors`` keep alive: their storages' (the outputs of a batch are
    views of one padded tensor, which stays whole while any of them lives), each counted once."""
    storages = {}
    for x in tensors:
        storage = x.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _own_stream(torch, device):
    """A CUDA stream for the output path's work, from torch's high-priority pool: the streams a
    model makes come round robin from the normal-priority pool, and sharing one with the model
    would make each wait for the other's kernels."""
    return torch.cuda.Stream(device, priority=-1)


def _finite_flags(torch, outputs):
    """(pinned bool tensor, index per output or None): whether each CUDA output is finite,
    reduced on its device in the model's stream and copied back behind it (non-blocking: a few
    bytes), so the host never scans the floats for NaN/Inf (``HostOutputs.finite``)."""
    index, flags = [], []
    for x in outputs:
        if on_cuda(x):
            index.append(len(flags))
            flags.append(torch.isfinite(x).all())
        else:
            index.append(None)
    host = torch.empty(len(flags), dtype=torch.bool, pin_memory=True)
    host.copy_(torch.stack(flags), non_blocking=True)
    return host, index


def all_finite(x):
    """Whether an output (host array or tensor) holds no NaN or Inf."""
    if is_tensor(x):
        import torch

        return bool(torch.isfinite(x).all())
    return bool(np.isfinite(x).all())
