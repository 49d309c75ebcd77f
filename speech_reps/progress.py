"""How far a job is: a progress bar on a terminal, and a line in the log every ``interval``
seconds otherwise (a job of featurize.sh writes to its log file, where a bar would show nothing
until the job ends).

The line reads ``progress: <done> of <total> utterances (<p>%), <h> h of audio, <x>x real time,
ETA <h:mm:ss>``; steps/featurize.sh sums these lines over its jobs. The speed is that of the
last minute, so it follows the run (a cumulative rate freezes after the first minutes).
"""

import collections
import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds of history behind the live speed


def format_eta(seconds):
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """``update(utterances, seconds_of_audio)`` after each batch; ``close()`` at the end.

    ``done``/``seconds``: what an earlier run finished (a resume): counted in the totals, not in
    the speed."""

    def __init__(self, total, done=0, seconds=0.0, desc="", bar=True, interval=30.0, clock=time.monotonic):
        self.total, self.done, self.seconds = total, done, seconds
        self.interval, self.clock = interval, clock
        self._history = collections.deque([(clock(), seconds)])
        self._last_line = clock()
        self._bar = tqdm(total=total, initial=done, unit="utt", file=sys.stderr, disable=not bar,
                         desc=desc, dynamic_ncols=True)
        self._lines = not bar and interval > 0

    def speed(self):
        """Seconds of audio per second over the last WINDOW seconds, or None before any."""
        (t0, s0), (t1, s1) = self._history[0], self._history[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None

    def eta(self):
        """Seconds left, by the utterance rate over the same window."""
        speed = self.speed()
        if speed is None or self.seconds <= 0:
            return None
        per_utt = self.seconds / max(self.done, 1)  # average audio per utterance so far
        return (self.total - self.done) * per_utt / speed

    def update(self, utterances, seconds=0.0):
        now = self.clock()
        self.done += utterances
        self.seconds += seconds
        self._history.append((now, self.seconds))
        while len(self._history) > 2 and self._history[1][0] <= now - WINDOW:
            self._history.popleft()
        speed = self.speed()
        self._bar.update(utterances)
        self._bar.set_postfix_str(f"{self.seconds / 3600:.3f} h audio, "
                                  f"{'?' if speed is None else f'{speed:.0f}'}x real time", refresh=False)
        if self._lines and now - self._last_line >= self.interval:
            self._last_line = now
            log.info("%s", self.line())

    def line(self):
        speed = self.speed()
        percent = 100.0 * self.done / max(self.total, 1)
        return (f"progress: {self.done} of {self.total} utterances ({percent:.0f}%), "
                f"{self.seconds / 3600:.3f} h of audio, "
                f"{'?' if speed is None else f'{speed:.1f}'}x real time, ETA {format_eta(self.eta())}")

    def close(self):
        self._bar.close()
