"""Peak memory of a bench process and of the parsing worker it starts (digest/readahead.py):
the two run at once, so an ingest's peak is their sum."""

from __future__ import annotations

import multiprocessing
import resource
import threading
from pathlib import Path
from types import TracebackType


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries a parent's
    high-water mark into a child through fork and exec, so a worker started by a bench
    that had just generated 300,000 listings reported the bench's size, not its own."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0
    (line,) = (x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


class ChildPeaks:
    """Watches this process's multiprocessing children while it is entered, and keeps the
    largest peak RSS any of them reached: a child's VmHWM is gone once it exits, so it is
    read while the child runs, ten times a second."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    self.peak_mb = max(self.peak_mb, peak_rss_mb(child.pid))
