"""A GPU's float32 matrices into host memory for the archive writer, in the order it writes them.

The writer (kaldi/writer.py) writes a matrix's rows straight from host memory. A device tensor
gets there through a small ring of page-locked blocks: ``begin(tensors)`` queues the copies of
a batch's matrices, one block each, as far as free blocks allow; ``take(tensor)`` waits for that
matrix's copy and returns a numpy view of its block, which stays valid until the next ``take``
(the writer has written it by then, and its block takes the next queued copy). So the copy
engine fills the next blocks while the disk takes the current one, and the host never holds a
whole batch.

Why a ring of fixed blocks and not a buffer per batch: page-locking host memory runs at about
1 GB/s (measured on an H200 host), and a DeCoAR batch's outputs are 2.6 GB: buffers sized to
batches cost seconds to make, stalled the model while they were made, and took gigabytes of
RAM. Four blocks of 64 MB are made once (0.25 s, in the writer's thread) and hold any
utterance of up to 78 s of DeCoAR's 2048-dim output at 100 frames a second. A larger matrix,
or one ``begin`` did not see, is not staged: ``take`` returns None and the writer copies it to
pageable memory itself (slower, as exact).

Device -> page-locked copies run at the bus's rate (53 GB/s measured on an H200 host, against
1.3 GB/s into pageable memory); the writer's disk is the slower side by far. torch is imported
only when a tensor arrives.
"""

from collections import deque

from speech_reps.kaldi.compress import is_tensor

BLOCK_BYTES = 64 << 20  # a power of two: torch's page-locked allocator rounds up to one anyway
BLOCKS = 4


def on_device(x):
    """Whether ``x`` is a torch tensor on a device other than the CPU."""
    return is_tensor(x) and x.device.type != "cpu"


def to_host(x):
    """An array of ``x``; a torch tensor's float32 values on the host (a copy to pageable memory
    for a device's)."""
    if is_tensor(x):
        import torch

        return x.detach().to(device="cpu", dtype=torch.float32).numpy()
    return x


class HostStaging:
    """``begin(tensors)``, then ``take(t)`` for each of them in the same order (see the module's
    text); a writer calls ``begin_writes(ops)`` and ``host(x)``. ``pin``: page-locked blocks
    (False only for tests on a host without CUDA)."""

    def __init__(self, block_bytes=BLOCK_BYTES, blocks=BLOCKS, pin=True):
        self.block_bytes = block_bytes
        self.blocks = blocks
        self.pin = pin
        self._free = []  # blocks holding nothing
        self._made = 0
        self._queued = deque()  # tensors begun, their copies not yet issued
        self._copying = deque()  # (tensor, host view, block, event or None)
        self._current = None  # the block of the matrix taken last: the writer's until the next take

    def fits(self, t):
        return t.numel() * 4 <= self.block_bytes

    def begin_writes(self, ops):
        """``begin`` with the device matrices of a writer's ``("write", key, feats, ...)``
        operations (its other operations, and host arrays, pass)."""
        self.begin([op[2] for op in ops if op[0] == "write" and on_device(op[2])])

    def host(self, x):
        """``x`` as a host array: a device matrix from its block when begun (``take``), else
        copied (``to_host``); a host array as it is."""
        staged = self.take(x) if on_device(x) else None
        return to_host(x) if staged is None else staged

    def begin(self, tensors):
        """Queue the copies of ``tensors`` (a batch's matrices, in writing order). The block of
        the matrix taken last is free (the writer prepares a batch only once the one before is
        written), and what an earlier batch left untaken (after a write failed) is dropped."""
        self._release_current()
        while self._copying:
            _, _, block, event = self._copying.popleft()
            if event is not None:
                event.synchronize()  # its copy may still be writing into the block
            self._free.append(block)
        self._queued = deque(t for t in tensors if self.fits(t))
        self._issue()

    def take(self, t):
        """The float32 values of ``t`` as a numpy array in a page-locked block, valid until the
        next call; None when ``t`` was not staged (the caller copies it)."""
        if self._release_current():  # the matrix taken before is written
            self._issue()
        if not self._copying or self._copying[0][0] is not t:
            return None
        _, host, block, event = self._copying.popleft()
        if event is not None:
            event.synchronize()
        self._current = block
        self._issue()  # the next copies run while this one is written
        return host.numpy()

    def _release_current(self):
        """The block of the matrix taken last is free again; False when there was none."""
        if self._current is None:
            return False
        self._free.append(self._current)
        self._current = None
        return True

    def _block(self):
        if self._free:
            return self._free.pop()
        if self._made == self.blocks:
            return None
        import torch

        self._made += 1
        return torch.empty(self.block_bytes, dtype=torch.uint8, pin_memory=self.pin)

    def _issue(self):
        while self._queued:
            block = self._block()
            if block is None:
                return
            import torch

            t = self._queued.popleft()
            host = block[:t.numel() * 4].view(torch.float32).view(t.shape)
            # on the writer thread's current stream: the engine's own, on which the tensor's
            # memory is kept from reuse (engine/output.py)
            host.copy_(t, non_blocking=True)
            event = None
            if t.is_cuda:
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(t.device))
            self._copying.append((t, host, block, event))
