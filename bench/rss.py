"""Peak memory and CPU time of a bench process and of the parsing worker it starts
(digest/readahead.py): the two run at once, so an ingest's cost is their sum."""

from __future__ import annotations

import multiprocessing
import os
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
    # A process that has exited but is not yet reaped has no memory, and no VmHWM line.
    peaks = [int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM:")]
    return peaks[0] / 1024 if peaks else 0.0


class ChildPeaks:
    """Watches this process's multiprocessing children while it is entered: the largest
    peak RSS any of them reached, and the CPU time they used. A child's figures are gone
    once it exits (the run's worker is forked by a server, so getrusage never sees it),
    so they are read while it runs, ten times a second."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    self.peak_mb = max(self.peak_mb, peak_rss_mb(child.pid))
                    self._cpu[child.pid] = cpu_seconds(child.pid) or self._cpu.get(child.pid, 0)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process, or 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: the 14th and 15th fields of the line, the 12th and 13th after ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
