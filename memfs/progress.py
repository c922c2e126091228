"""Progress reporting for long operations (``convert``, ``info --hash``).

On a terminal: one line redrawn in place with a bar, bytes done, rate and ETA.  Elsewhere (a log
file, a pipe): a plain line every ``interval`` seconds, so logs stay readable.  Off: nothing.
The rate is measured over the last few seconds so that skipped holes (which cost nothing) do not
make the ETA lie for long.
"""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.2
LINE_SECONDS = 10.0
RATE_WINDOW_SECONDS = 5.0


def format_bytes(n: float) -> str:
    """``1.50 GiB`` style sizes (binary units, three significant digits)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Report the advance of an operation over ``total`` bytes.

    ``mode`` is ``"tty"`` (redraw one line), ``"lines"`` (a line every ``interval`` seconds),
    ``"off"``, or ``"auto"``: tty when ``stream`` is a terminal, else lines.
    """

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        mode: str = "auto",
        interval: float = LINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "tty" if isatty is not None and isatty() else "lines"
        if mode not in ("tty", "lines", "off"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._last_draw = self._start
        self._done = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque([(self._start, 0)])
        self._width = 0

    # -- measurements --------------------------------------------------------------------------

    def rate(self) -> float:
        """Bytes per second over the recent window (0 before anything happened)."""
        now, done = self._samples[-1]
        then, before = self._samples[0]
        if now <= then:
            return 0.0
        return (done - before) / (now - then)

    def eta(self) -> float | None:
        """Seconds left at the recent rate, or None when it cannot be estimated yet."""
        rate = self.rate()
        if rate <= 0:
            return None
        return (self.total - self._done) / rate

    def _sample(self, now: float) -> None:
        self._samples.append((now, self._done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_SECONDS:
            self._samples.popleft()

    # -- reporting -----------------------------------------------------------------------------

    def update(self, done: int) -> None:
        """The operation has now covered ``done`` bytes of ``total``."""
        self._done = done
        if self.mode == "off":
            return
        now = self._clock()
        self._sample(now)
        wait = REDRAW_SECONDS if self.mode == "tty" else self.interval
        if now - self._last_draw >= wait:
            self._last_draw = now
            self._draw()

    def status(self) -> str:
        """``45.0%  900.00 MiB of 2.00 GiB  350.00 MiB/s  ETA 0:00:03``."""
        percent = 100.0 * self._done / self.total if self.total else 100.0
        eta = self.eta()
        return (
            f"{percent:5.1f}%  {format_bytes(self._done)} of {format_bytes(self.total)}  "
            f"{format_bytes(self.rate())}/s  ETA {format_duration(eta) if eta is not None else '?'}"
        )

    def _draw(self) -> None:
        if self.mode == "tty":
            filled = BAR_WIDTH * self._done // self.total if self.total else BAR_WIDTH
            text = f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.status()}"
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write(f"\r{text}{' ' * pad}")
        else:
            self.stream.write(f"{self.label}: {self.status()}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """Say what is happening now that the byte count does not show (e.g. a final flush)."""
        if self.mode == "off":
            return
        if self.mode == "tty":
            line = f"{self.label} {text}"
            self.stream.write(f"\r{line}{' ' * max(0, self._width - len(line))}")
            self._width = len(line)
        else:
            self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def finish(self, message: str | None = None) -> None:
        """End the report: clear the bar (tty) and print ``message`` if given."""
        if self.mode == "off":
            return
        if self.mode == "tty" and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()

    @property
    def elapsed(self) -> float:
        """Seconds since the report started."""
        return self._clock() - self._start


__all__ = ["Progress", "format_bytes", "format_duration"]
