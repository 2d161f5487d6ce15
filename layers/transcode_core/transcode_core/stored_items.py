"""The stored items a poll decides against, held only while it works on them.

A poll holds the ids of its active jobs (ActiveJobs), not their items: the first ITEMS_HELD items the index gives
are held as it gave them, any other is read from the table when the adapter or the pipeline asks for it (100 a
call, the limit of a BatchGetItem), ITEMS_HELD items at most. So the poll's memory grows by an id a job, not by
an item (about 2 KiB), whatever the number of jobs, and a poll of no more jobs than it holds reads none twice.
An item that lags a write (the index is eventually consistent) costs a lost race re-decided, never a wrong
decision: writes are conditional on the version read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence
from typing import Any

StoredJob = Mapping[str, Any]  # a job item as the store returns it (plain Python values)

ITEMS_HELD = 2000
READ_AHEAD = 100  # items a read brings: BatchGetItem's limit
# The items asked for last may still be in use (a listing page's, decided and written after the page is read,
# on workers): let go only once nothing else is left to let go.
IN_USE = 2 * READ_AHEAD


class StoredItems:
    """Stored items by job id: those held as they are, the others read with `read` (job ids -> the items
    found), then held, at most `held` items (ITEMS_HELD by default). A poll asks for each job's item about once:
    what it asked for longest ago is let go first, then what it has not asked for yet (read ahead, or given by
    the index), oldest first, then the IN_USE items asked for last (`held` is meant to be well above IN_USE +
    READ_AHEAD). What a write left replaces what was read (`remember`); a job found missing is held as None.
    Safe to use from several threads."""

    def __init__(self, read: Callable[[Sequence[str]], Mapping[str, StoredJob]], held: int | None = None) -> None:
        self._read_stored = read
        self._held = ITEMS_HELD if held is None else held
        self._unasked: OrderedDict[str, StoredJob | None] = OrderedDict()
        self._asked: OrderedDict[str, StoredJob | None] = OrderedDict()
        self._lock = threading.Lock()

    def items_of(self, job_ids: Iterable[str]) -> dict[str, StoredJob]:
        """The items of these jobs (missing ones left out): held ones as they are, the others read in one go."""
        found = self._held_or_read(list(dict.fromkeys(job_ids)), asked=True)
        return {job_id: item for job_id, item in found.items() if item is not None}

    def item_of(self, job_id: str) -> StoredJob | None:
        return self.items_of([job_id]).get(job_id)

    def read_ahead(self, job_ids: Iterable[str]) -> None:
        """Reads and holds, as not asked for yet, those of these jobs not held."""
        self._held_or_read(list(dict.fromkeys(job_ids)), asked=False)

    def holds(self, job_id: str) -> bool:
        with self._lock:
            return self._holds(job_id)

    def hold_while_room(self, job_id: str, item: StoredJob) -> None:
        """An item read already (the index's), held as not asked for yet unless `held` items are."""
        with self._lock:
            if len(self._asked) + len(self._unasked) < self._held and job_id not in self._asked:
                self._unasked.setdefault(job_id, item)

    def remember(self, job_id: str, item: StoredJob | None) -> None:
        """What a write of this job left (None: nothing stored)."""
        with self._lock:
            self._hold(job_id, item, asked=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._asked) + len(self._unasked)

    def _held_or_read(self, wanted: list[str], asked: bool) -> dict[str, StoredJob | None]:
        found: dict[str, StoredJob | None] = {}
        with self._lock:
            for job_id in wanted:
                if self._holds(job_id):
                    found[job_id] = self._touch(job_id) if asked else self._current(job_id)
        unread = [job_id for job_id in wanted if job_id not in found]
        if unread:
            read = self._read_stored(unread)
            with self._lock:
                for job_id in unread:
                    found[job_id] = self._keep(job_id, read.get(job_id), asked)
        return found

    def _holds(self, job_id: str) -> bool:
        return job_id in self._asked or job_id in self._unasked

    def _current(self, job_id: str) -> StoredJob | None:
        """The item held for this job (None: held as missing, or not held)."""
        return self._asked.get(job_id, self._unasked.get(job_id))

    def _touch(self, job_id: str) -> StoredJob | None:
        item = self._unasked.pop(job_id) if job_id in self._unasked else self._asked.pop(job_id)
        self._asked[job_id] = item
        return item

    def _keep(self, job_id: str, read: StoredJob | None, asked: bool) -> StoredJob | None:
        """Holds what was read, unless a write remembered meanwhile is newer (a read can start before a write
        and end after it)."""
        held = self._current(job_id)
        if held is not None and (read is None or int(held.get("version", 0)) > int(read.get("version", 0))):
            return self._touch(job_id) if asked else held
        self._hold(job_id, read, asked)
        return read

    def _hold(self, job_id: str, item: StoredJob | None, asked: bool) -> None:
        self._unasked.pop(job_id, None)
        self._asked.pop(job_id, None)
        (self._asked if asked else self._unasked)[job_id] = item
        while len(self._asked) + len(self._unasked) > self._held:
            (self._asked if len(self._asked) > IN_USE or not self._unasked else self._unasked).popitem(last=False)


class ActiveJobs(Mapping[str, StoredJob]):
    """The jobs a poll polls, by id, in the index's order: their ids held, their items read from `items` when
    asked for. A job asked for that is not held is read with the READ_AHEAD jobs that follow it, so a reader
    going through the jobs in this order (`items()`, or a subsequence of the ids) reads 100 a call. A reader
    that looks jobs up in another order (a listing's) asks `items.items_of` for them, a page at a time."""

    def __init__(self, job_ids: Iterable[str], items: StoredItems) -> None:
        self._order: list[str] = list(dict.fromkeys(job_ids))
        self._position: dict[str, int] = {job_id: position for position, job_id in enumerate(self._order)}
        self._stored = items

    def position(self, job_id: str) -> int:
        """The job's place in the order (KeyError when it is not one of these jobs)."""
        return self._position[job_id]

    def __getitem__(self, job_id: str) -> StoredJob:
        position = self._position[job_id]
        if not self._stored.holds(job_id):  # read_ahead reads only those of the window not held
            self._stored.read_ahead(self._order[position : position + READ_AHEAD])
        item = self._stored.item_of(job_id)
        if item is None:  # deleted from the table since the index was read
            raise KeyError(job_id)
        return item

    def items(self) -> ItemsView[str, StoredJob]:
        return _FoundItems(self)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._position

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


class _FoundItems(ItemsView[str, StoredJob]):
    """(id, item) in order, a job deleted from the table since the index was read left out."""

    _mapping: ActiveJobs

    def __iter__(self) -> Iterator[tuple[str, StoredJob]]:
        for job_id in self._mapping:
            item = self._mapping.get(job_id)
            if item is not None:
                yield job_id, item
