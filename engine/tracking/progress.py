"""Progress of long work: a tqdm bar on a terminal, plain log lines otherwise.

A bar redraws in place, which is what a person at a terminal wants and what a
log file, a SLURM ``.out`` file or a CI log cannot show: there the same
information comes as rate-limited log lines (count, percentage, rate, ETA).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from engine.search import Search, SearchResult
    from engine.types import Evaluation

MODES = ("auto", "bar", "log", "none")
_log = logging.getLogger("engine.progress")
T = TypeVar("T")


def resolve_mode(mode: str | None, stream: Any = None) -> str:
    """The concrete mode (``bar``, ``log`` or ``none``) for a configured one.

    ``auto`` is a bar when standard output is a terminal and log lines when it
    is not (a file, a pipe, a batch scheduler).

    Raises:
        ValueError: for a mode other than ``auto``, ``bar``, ``log``, ``none``.
    """
    mode = "none" if mode is None or mode is False else str(mode)
    if mode not in MODES:
        raise ValueError(f"progress must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "bar" if callable(isatty) and isatty() else "log"


def format_eta(seconds: float | None) -> str:
    """``1h02m03s`` / ``2m03s`` / ``3s``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """One unit of long work (epochs, training jobs, evaluations) shown as a bar or as log lines.

    Use it from any long loop (supernet training, stand-alone jobs) so that all
    progress in the project looks alike and obeys the same ``progress`` setting.

    Args:
        total: Units expected (``None``: unknown, no percentage or ETA).
        desc: What is counted, e.g. ``"search"`` or ``"supernet epochs"``.
        mode: ``auto``, ``bar``, ``log`` or ``none``.
        unit: Name of one unit in the display.
        log_every: Seconds between two log lines (log mode); a line is also
            written at every tenth of the total and at the end.
        logger: Where log lines go (default ``engine.progress``).
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        mode: str = "auto",
        unit: str = "it",
        log_every: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.mode = resolve_mode(mode)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.log_every = float(log_every)
        self.logger = logger or _log
        self.n = 0
        self._n0 = 0
        self._logged_n = -1
        self.postfix = ""
        self._start = time.monotonic()
        self._last_log = self._start
        self._last_tenth = 0
        self._bar: Any = None
        self._closed = False
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=True)

    def start_at(self, n: int) -> None:
        """Set the count without logging (work restored on resume); the rate counts only new work."""
        self.n = n
        self._n0 = n
        self._start = time.monotonic()
        if self._bar is not None:
            self._bar.reset(total=self.total)
            self._bar.update(n)
        self._last_tenth = self._tenth(n)

    def _tenth(self, n: int) -> int:
        return int(10 * n / self.total) if self.total else 0

    def eta(self) -> float | None:
        """Seconds left at the rate of the work done in this process, ``None`` if unknown."""
        done = self.n - self._n0
        if not self.total or done <= 0:
            return None
        elapsed = time.monotonic() - self._start
        return elapsed / done * max(0, self.total - self.n)

    def update(self, n: int = 1, postfix: str = "") -> None:
        """Count ``n`` more units; ``postfix`` is a short status such as the best value so far."""
        self.n += n
        if postfix:
            self.postfix = postfix
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
        elif self.mode == "log":
            now = time.monotonic()
            tenth = self._tenth(self.n)
            if tenth > self._last_tenth or now - self._last_log >= self.log_every:
                self._last_tenth = tenth
                self._last_log = now
                self._logged_n = self.n
                self.logger.info("%s", self.line())

    def line(self) -> str:
        """The log line for the current state."""
        elapsed = time.monotonic() - self._start
        done = self.n - self._n0
        rate = done / elapsed if elapsed > 0 else float("nan")
        if self.total:
            count = f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            count = f"{self.n} {self.unit}"
        parts = [f"{self.desc}: {count}" if self.desc else count]
        if math.isfinite(rate):
            parts.append(f"{rate:.3g} {self.unit}/s")
        parts.append(f"elapsed {format_eta(elapsed)}")
        if self.total:
            parts.append(f"ETA {format_eta(self.eta())}")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def close(self, message: str = "") -> None:
        """Finish the display (a final log line in log mode); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and (self._logged_n != self.n or message):
            self.logger.info("%s", f"{self.desc}: {message}" if self._logged_n == self.n else self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_iter(
    iterable: Iterable[T], total: int | None = None, desc: str = "", mode: str = "auto", unit: str = "it"
) -> Iterator[T]:
    """Iterate while showing progress (``total`` defaults to ``len(iterable)``)."""
    if total is None and isinstance(iterable, Sequence):
        total = len(iterable)
    with Progress(total, desc=desc, mode=mode, unit=unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)


class SearchProgress:
    """Search callback: evaluations done out of the budget, best objective so far, ETA.

    The total is ``budget.evaluations`` (unknown when the budget is only in
    seconds). Restored evaluations of a resumed search are counted from the start.

    Args:
        mode: ``auto``, ``bar``, ``log`` or ``none``.
        log_every: Seconds between two log lines in log mode.
    """

    def __init__(self, mode: str = "auto", log_every: float = 30.0) -> None:
        self.mode = resolve_mode(mode)
        self.log_every = log_every
        self._progress: Progress | None = None
        self._best: float | None = None

    def _postfix(self) -> str:
        return "" if self._best is None else f"best {self._best:.4g}"

    def on_start(self, search: Search) -> None:
        if self.mode == "none":
            return
        final = search.strategy.final_fidelity
        for ev in search.history:
            self._note(ev, final)
        self._progress = Progress(
            search.budget.evaluations, desc=f"search {search.strategy.name}", mode=self.mode,
            unit="eval", log_every=self.log_every,
        )
        self._progress.postfix = self._postfix()
        self._progress.start_at(search.n_evaluations)

    def _note(self, ev: Evaluation, final: str) -> None:
        if ev.ok and ev.fidelity == final and ev.objective is not None and (
            self._best is None or ev.objective > self._best
        ):
            self._best = ev.objective

    def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
        if self._progress is None:
            return
        final = search.strategy.final_fidelity
        for ev in evaluations:
            self._note(ev, final)
        new = search.n_evaluations - self._progress.n
        self._progress.update(max(0, new), postfix=self._postfix())

    def on_end(self, search: Search, result: SearchResult) -> None:
        self.close(f"stopped: {result.stop_reason}")

    def close(self, message: str = "") -> None:
        """Close the display; called by the tracking session even when the search fails."""
        if self._progress is not None:
            self._progress.close(message)
            self._progress = None
