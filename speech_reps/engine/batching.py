"""Length buckets: utterances of similar length go into one model call.

Utterances arrive in data-dir order (from the loader workers). The bucketer keeps a pool of
about ``pool_batches`` batches' worth of them, sorts the pool by length and cuts it into batches
whose *padded* size (longest utterance x count) stays within ``batch_frames`` output frames, so
memory per call is bounded. A batch also ends before an utterance more than 1/(1 - max_padding)
times as long as its first, so padding is under ``max_padding`` (10%) of every call: short
utterances come in many per call, and without that rule one call could span 1 s to 5 s.
What is left over (less than one batch) waits for the next pool; a left-over batch that is
already full (no utterance as long as its longest fits in it: one utterance longer than
``batch_frames``, say) is cut at once, or it would keep the pool over its size for the rest of
the job and turn every later utterance into a call of its own. The first pool is one batch's
worth, later ones ``pool_batches``: the model's first call waits for one batch of audio, not
eight (on a GPU, up to 3,200 s of it against 25,600 s); full-size pools after it keep the
calls few (a pool grown 1, 2, 4, 8 made 19% more of DeCoAR's sequential LSTM steps on 10 h).

The plan depends only on the sequence of (utterance, length) and the two sizes, never on timing
or on the number of workers, so a rerun makes the same batches (resume relies on it).
An utterance longer than ``batch_frames`` is a batch of its own.
"""

from dataclasses import dataclass

DEFAULT_POOL_BATCHES = 8
MAX_PADDING = 0.10


@dataclass
class PaddingStats:
    real: int = 0  # frames of real utterances in the batches
    padded: int = 0  # frames the model computed (longest x count, summed over batches)
    batches: int = 0

    def add(self, lengths):
        self.real += sum(lengths)
        self.padded += max(lengths) * len(lengths)
        self.batches += 1

    @property
    def waste(self):
        """Fraction of the computed frames that were padding."""
        return 1.0 - self.real / self.padded if self.padded else 0.0


class LengthBucketer:
    """``for items in bucketer.batches(stream)``: ``stream`` yields (item, frames)."""

    def __init__(self, batch_frames, pool_batches=DEFAULT_POOL_BATCHES, max_padding=MAX_PADDING):
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be positive, got {batch_frames}")
        self.batch_frames = batch_frames
        self.max_padding = max_padding
        self.pool_batches = max(1, pool_batches)
        self.stats = PaddingStats()

    def batches(self, stream):
        pool, pooled, pool_batches = [], 0, 1  # one batch's worth first (module doc)
        for item, frames in stream:
            pool.append((frames, len(pool), item))
            pooled += frames
            if pooled > self.batch_frames * pool_batches:  # >: a full batch and the next to close it
                pool = yield from self._cut(pool, final=False)
                pooled = sum(f for f, _, _ in pool)
                pool_batches = self.pool_batches
        yield from self._cut(pool, final=True)

    def _cut(self, pool, final):
        """Yield the pool's batches, shortest first; return the left-over (not final) part."""
        pool.sort(key=lambda e: (e[0], e[1]))  # stable: equal lengths keep data-dir order
        batch = []
        for entry in pool:
            if batch and (entry[0] * (len(batch) + 1) > self.batch_frames
                          or batch[0][0] < (1 - self.max_padding) * entry[0]):
                yield self._emit(batch)
                batch = []
            batch.append(entry)
        if not batch:
            return []
        if final or batch[-1][0] * len(batch) >= self.batch_frames:  # the last or a full one
            yield self._emit(batch)
            return []
        return [(f, i, item) for i, (f, _, item) in enumerate(batch)]

    def _emit(self, batch):
        self.stats.add([f for f, _, _ in batch])
        return [item for _, _, item in batch]
