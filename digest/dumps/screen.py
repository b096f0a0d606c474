"""The bad-record rule: a dump's rare bad records are skipped with a warning, a dump with
many fails whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from digest.errors import DumpError
from digest.model import Paper, Skipped

# A dump fails whole when more than one record in this many is bad: a stray broken line
# in a snapshot is skipped, a file of garbage is not half ingested.
BAD_RECORDS_PER = 1000
# Past this many bad records a dump that is still over the share stops at once.
_EARLY_FAILURE = 1000
_MAX_WARNINGS = 20


class Screen:
    """Passes a dump's papers on and skips its bad records with a warning while they stay
    rare (one in BAD_RECORDS_PER); past that the dump fails whole, raising from inside the
    stream so that the store's transaction rolls back."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.papers = 0
        self.bad = 0
        self.left_out = 0
        self.warnings: list[str] = []
        self._first_bad: Skipped | None = None

    def papers_of(self, items: Iterable[Paper | Skipped]) -> Iterator[Paper]:
        for item in items:
            if isinstance(item, Paper):
                self.papers += 1
                yield item
            else:
                self._skip(item)
        if self._too_many_bad():
            self._fail()
        if self.bad > _MAX_WARNINGS:
            self.warnings.append(f"... and {self.bad - _MAX_WARNINGS} more bad records skipped")
        if not self.papers and not self.left_out:
            raise DumpError(self.path, "no listings in the file")

    def _skip(self, item: Skipped) -> None:
        if not item.bad:
            self.left_out += 1
            self.warnings.append(f"{item.where}: {item.reason}")
            return
        self.bad += 1
        self._first_bad = self._first_bad or item
        if self.bad <= _MAX_WARNINGS:
            self.warnings.append(f"{item.where}: {item.reason} (record skipped)")
        if self.bad >= _EARLY_FAILURE and self._too_many_bad():
            self._fail()

    def _too_many_bad(self) -> bool:
        return self.bad * BAD_RECORDS_PER > self.papers + self.bad

    def _fail(self) -> None:
        first = self._first_bad
        assert first is not None  # only called once a bad record was seen
        raise DumpError(self.path, f"{self.bad} bad of {self.papers + self.bad} records, "
                        f"over 1 in {BAD_RECORDS_PER} (first, {first.where}: {first.reason})")
