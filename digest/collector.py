"""How often Python's cyclic garbage collector runs while dumps are ingested.

Ingest makes about thirty containers a listing (the paper, its spelling, its rows, its
entries in the batch's index) that live as long as their batch of 500 listings. At the
interpreter's default, a collection at every 700 new containers, the collector ran about
twenty times a batch; a batch's objects, alive until it ends, were walked again as they
moved up the generations, and now and then it walked every object the run holds: the
recent papers a store holds, the run's modules. That cost about 3 µs a listing at 10k
stored, a tenth of the run's time, and about 1.5 in the parsing worker. The hot path
makes no reference cycles; running the collector less often only delays freeing the
rare cycle that something else makes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# New containers between two collections of the youngest generation: more than a batch
# makes, so that a batch's objects are walked about once before they are freed.
THRESHOLD = 10_000

# Runs in this process that want fewer collections, and the setting from before the
# first: the last to end puts it back, whatever order they end in.
_lock = threading.Lock()
_runs = 0
_before = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the collector at most once every THRESHOLD new containers, then as before. A
    threshold of 0 (automatic collection turned off by the program) is left as it is."""
    global _runs, _before
    with _lock:
        if _runs == 0:
            _before = gc.get_threshold()
            first, *older = _before
            if first:
                gc.set_threshold(max(first, THRESHOLD), *older)
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.set_threshold(*_before)
