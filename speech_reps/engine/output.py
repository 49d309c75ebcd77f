"""Model outputs into host memory for the writer, without stopping the GPU.

A model's ``featurize`` returns float32 matrices: numpy arrays, or torch tensors on any device.
``OutputPath.take(outputs)`` gives a ``HostOutputs`` whose ``arrays`` the writer thread reads
after ``wait()`` and gives back with ``release()``:

- numpy arrays and CPU tensors: as they are (a tensor's numpy view, no copy); nothing to wait for.
- CUDA tensors: copied on a stream of their own into a pinned host buffer (page-locked memory
  copies at the bus's rate; pageable memory at a fraction of it), non-blocking. Two buffers
  take turns, so batch k+1 computes while batch k is copied and written; ``take`` waits only when
  both are still being written. The rows are then written from the buffer (kaldi/writer.py
  writes a matrix's bytes in place, after Kaldi's header).
- CUDA tensors with ``--compress true``: not copied here at all; the writer hands each tensor to
  the compressor (kaldi/compress.py), which compresses on the device and returns the bytes (a
  quarter of the floats').

Nothing here imports torch unless a tensor arrives.
"""

import queue

import numpy as np

from speech_reps.kaldi.compress import is_tensor
from speech_reps.models.torch_device import host_array

DEFAULT_SLOTS = 2  # pinned buffers: one being filled by the copy engine, one being written


def on_cuda(x):
    return is_tensor(x) and x.is_cuda


class HostOutputs:
    """One batch's outputs as the writer takes them: ``wait()``, read ``arrays``, ``release()``.
    ``stream``: for CUDA tensors left on the device (compressed by the writer), the output path's
    own CUDA stream, for the writer thread's device work on them (``writer_stream``)."""

    def __init__(self, arrays, event=None, on_release=None, stream=None, finite=None):
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
        """True while a device->host copy (or the device's computation) may still be running."""
        return self._event is not None

    def wait(self):
        if self._event is not None:
            self._event.synchronize()

    def writer_stream(self):
        """Called in the writer's thread after ``wait``: that thread's CUDA work (finiteness
        checks, the compressor) goes on ``stream`` from now on. On the default stream, each of
        the compressor's few synchronisations would also wait for the model's next batch,
        queued there meanwhile; on a stream of its own it waits for its own kernels only (the
        outputs are complete: ``wait`` saw the event recorded after them)."""
        if self.stream is not None:
            import torch

            if torch.cuda.current_stream(self.stream.device) != self.stream:
                torch.cuda.set_stream(self.stream)

    def release(self):
        if self._on_release is not None:
            self._on_release()
            self._on_release = None


def slot_size(needed, current, expected=0):
    """Elements a pinned buffer holding ``current`` must have for a batch of ``needed``: as it
    is when that fits, else at once the most a batch of the job can hold (``expected``; at most
    twice ``needed``, as a huge --batch-frames is a bound, not a size), or a quarter more than
    before; rounded up to a power of two, the block torch's page-locked allocator hands out (and
    keeps cached) for any size of that class. Page-locking is slow (about 1 GB/s, measured on an H200 host:
    a DeCoAR batch's 2.6 GB took seconds), so a buffer grown step by step with the batches
    stalled the model each time: 11 s of a 28 s job writing float32 arks."""
    if needed <= current:
        return current
    size = max(needed, min(expected, 2 * needed), int(current * 1.25))
    return 1 << (size - 1).bit_length()


class _PinnedSlot:
    """A page-locked float32 host buffer, grown (never shrunk) to the largest batch, and the
    event recorded after the copies into it."""

    def __init__(self, torch):
        self.torch = torch
        self.buffer = torch.empty(0, dtype=torch.float32, pin_memory=True)
        self.event = torch.cuda.Event()

    def reserve(self, elements, expected=0):
        size = slot_size(elements, self.buffer.numel(), expected)
        if size != self.buffer.numel():
            self.buffer = None  # the old one goes first: both at once could exhaust the host's memory
            self.buffer = self.torch.empty(size, dtype=self.torch.float32, pin_memory=True)  # no pageable copy first
        return self.buffer


class OutputPath:
    """``take(outputs)`` -> HostOutputs; ``compress``: the job writes compressed matrices.
    ``check``: called while ``take`` waits for a buffer, to raise the writer's error (a writer
    that failed never releases its buffers). ``batch_elements``: the most float32 values a
    batch's outputs hold (padded frames per call x dimension): the pinned buffers get that
    size at the first batch that needs a buffer, not one growth at a time."""

    def __init__(self, compress=False, slots=DEFAULT_SLOTS, check=None, batch_elements=0):
        self.compress = compress
        self.batch_elements = batch_elements
        self._check = check
        self._slots_count = slots
        self._free = None  # queue of free _PinnedSlot, made at the first CUDA batch
        self._stream = None  # the copies' (made at the first CUDA batch)
        self._writer_stream = None  # the writer thread's device work with --compress

    def take(self, outputs):
        tensors = [x for x in outputs if on_cuda(x)]
        if not tensors:
            return HostOutputs([host_array(x) for x in outputs])
        import torch

        device = tensors[0].device
        finite = _finite_flags(torch, outputs)
        done = torch.cuda.Event()
        if self.compress:  # the writer compresses them on the device
            done.record(torch.cuda.current_stream(device))
            if self._writer_stream is None:
                self._writer_stream = _own_stream(torch, device)
            for x in tensors:  # their memory is not reused before the writer's work on them ran
                x.record_stream(self._writer_stream)
            return HostOutputs(list(outputs), done, stream=self._writer_stream, finite=finite)
        return self._copy_out(torch, device, outputs, finite)

    def _free_slot(self):
        """A buffer the writer is done with: waits while every one is still being written."""
        while True:
            try:
                return self._free.get(timeout=0.2)
            except queue.Empty:
                if self._check is not None:
                    self._check()

    def _copy_out(self, torch, device, outputs, finite):
        if self._free is None:
            self._stream = _own_stream(torch, device)
            self._free = queue.Queue()
            for _ in range(self._slots_count):
                self._free.put(_PinnedSlot(torch))
        slot = self._free_slot()
        sizes = [x.numel() if on_cuda(x) else 0 for x in outputs]
        buffer = slot.reserve(sum(sizes), self.batch_elements)
        flat = buffer.numpy()
        arrays, offset = [], 0
        self._stream.wait_stream(torch.cuda.current_stream(device))  # the model's work comes first
        with torch.cuda.stream(self._stream):
            for x, size in zip(outputs, sizes):
                if not on_cuda(x):
                    arrays.append(host_array(x))
                    continue
                buffer[offset:offset + size].view(x.shape).copy_(x, non_blocking=True)
                x.record_stream(self._stream)  # its memory is not reused before the copy ran
                arrays.append(flat[offset:offset + size].reshape(tuple(x.shape)))
                offset += size
            slot.event.record(self._stream)
        return HostOutputs(arrays, slot.event, lambda: self._free.put(slot), finite=finite)


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
