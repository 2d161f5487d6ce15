"""The stored items a poll decides against, held only while it works on them.

A poll holds the ids of its active jobs (ActiveJobs), not their items: an item is read from the table when the
adapter or the pipeline asks for it (100 a call, the limit of a BatchGetItem) and kept among the ITEMS_HELD
last used. So the poll's memory grows by an id a job, not by an item (about 2 KiB), whatever the number of jobs.
Reading an item again that was let go costs a read, never a wrong decision: reads are consistent, writes
conditional on the version read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence
from typing import Any

StoredJob = Mapping[str, Any]  # a job item as the store returns it (plain Python values)

ITEMS_HELD = 2000
READ_AHEAD = 100  # items a read brings: BatchGetItem's limit


class StoredItems:
    """Stored items by job id: those held as they are, the others read with `read` (job ids -> the items
    found), then held, the least recently used let go past `held` items. What a write left replaces what was
    read (`remember`); a job found missing is held as None. Safe to use from several threads."""

    def __init__(self, read: Callable[[Sequence[str]], Mapping[str, StoredJob]], held: int = ITEMS_HELD) -> None:
        self._read_stored = read
        self._held = held
        self._items: OrderedDict[str, StoredJob | None] = OrderedDict()
        self._lock = threading.Lock()

    def items_of(self, job_ids: Iterable[str]) -> dict[str, StoredJob]:
        """The items of these jobs (missing ones left out): held ones as they are, the others read in one go."""
        wanted = list(dict.fromkeys(job_ids))
        with self._lock:
            found = {job_id: self._touch(job_id) for job_id in wanted if job_id in self._items}
        unread = [job_id for job_id in wanted if job_id not in found]
        if unread:
            read = self._read_stored(unread)
            with self._lock:
                for job_id in unread:
                    found[job_id] = self._keep(job_id, read.get(job_id))
        return {job_id: item for job_id, item in found.items() if item is not None}

    def item_of(self, job_id: str) -> StoredJob | None:
        return self.items_of([job_id]).get(job_id)

    def holds(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._items

    def remember(self, job_id: str, item: StoredJob | None) -> None:
        """What a write of this job left (None: nothing stored)."""
        with self._lock:
            self._items[job_id] = item
            self._items.move_to_end(job_id)
            self._let_go()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _touch(self, job_id: str) -> StoredJob | None:
        self._items.move_to_end(job_id)
        return self._items[job_id]

    def _keep(self, job_id: str, read: StoredJob | None) -> StoredJob | None:
        """Holds what was read, unless a write remembered meanwhile is newer (a read can start before a write
        and end after it)."""
        held = self._items.get(job_id)
        if held is not None and (read is None or int(held.get("version", 0)) > int(read.get("version", 0))):
            return self._touch(job_id)
        self._items[job_id] = read
        self._items.move_to_end(job_id)
        self._let_go()
        return read

    def _let_go(self) -> None:
        while len(self._items) > self._held:
            self._items.popitem(last=False)


class ActiveJobs(Mapping[str, StoredJob]):
    """The jobs a poll polls, by id, in the index's order: their ids held, their items read from `items` when
    asked for. A job asked for that is not held is read with the READ_AHEAD jobs that follow it, so a reader
    going through the jobs in this order (`items()`, or a subsequence of the ids) reads 100 a call. A reader
    that looks jobs up in another order (a listing's) asks `items.get_many` for them, a page at a time."""

    def __init__(self, job_ids: Iterable[str], items: StoredItems) -> None:
        self._order: list[str] = list(dict.fromkeys(job_ids))
        self._position: dict[str, int] = {job_id: position for position, job_id in enumerate(self._order)}
        self._stored = items

    def position(self, job_id: str) -> int:
        """The job's place in the order (KeyError when it is not one of these jobs)."""
        return self._position[job_id]

    def __getitem__(self, job_id: str) -> StoredJob:
        position = self._position[job_id]
        if self._stored.holds(job_id):
            item = self._stored.item_of(job_id)
        else:
            ahead = [other for other in self._order[position : position + READ_AHEAD] if not self._stored.holds(other)]
            item = self._stored.items_of(ahead).get(job_id)
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
