"""The items a poll decides against: read in batches when asked for, held only while recent."""

from __future__ import annotations

from transcode_core.stored_items import READ_AHEAD, ActiveJobs, StoredItems


class Table:
    """Stored items by job id; counts the reads and the items each brought."""

    def __init__(self, count: int) -> None:
        self.items = {str(n): {"job_id": str(n), "version": 1} for n in range(count)}
        self.reads: list[int] = []

    def read(self, job_ids):
        self.reads.append(len(job_ids))
        return {job_id: self.items[job_id] for job_id in job_ids if job_id in self.items}


def test_going_through_the_active_jobs_in_order_reads_a_hundred_a_call_and_holds_a_bounded_number():
    table = Table(1000)
    items = StoredItems(table.read, held=250)
    active = ActiveJobs(table.items, items)
    seen = [job_id for job_id, item in active.items() if item["job_id"] == job_id]
    assert seen == list(table.items)
    assert table.reads == [READ_AHEAD] * 10
    assert len(items) == 250  # the least recently used let go


def test_a_job_let_go_is_read_again_when_asked_for():
    table = Table(300)
    items = StoredItems(table.read, held=100)
    active = ActiveJobs(table.items, items)
    assert active["0"]["job_id"] == "0" and active["250"]["job_id"] == "250"  # 0-99, then 250-299: 0-49 let go
    table.reads.clear()
    assert active["0"]["job_id"] == "0"
    assert table.reads == [50]  # what was let go of the hundred from 0, not what is still held


def test_what_a_write_left_is_kept_over_an_older_read_that_ends_after_it():
    table = Table(1)
    items = StoredItems(table.read)

    def read_after_a_write(job_ids):
        items.remember("0", {"job_id": "0", "version": 2})  # a worker's write lands while the read is out
        return table.read(job_ids)

    items._read_stored = read_after_a_write
    assert items.item_of("0") == {"job_id": "0", "version": 2}


def test_a_job_missing_from_the_table_is_held_as_missing_and_not_read_again():
    table = Table(0)
    items = StoredItems(table.read)
    assert items.items_of(["new"]) == {} and items.item_of("new") is None
    assert table.reads == [1]


def test_an_active_job_deleted_since_the_index_was_read_is_left_out_not_raised():
    table = Table(3)
    active = ActiveJobs(["0", "1", "2"], StoredItems(table.read))
    del table.items["1"]
    assert [job_id for job_id, _ in active.items()] == ["0", "2"]
    assert active.get("1") is None and "1" in active and len(active) == 3
