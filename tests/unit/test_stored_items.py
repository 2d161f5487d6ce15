"""The items a poll decides against: read in batches when asked for, held only while recent."""

from __future__ import annotations

from transcode_core.stored_items import IN_USE, READ_AHEAD, ActiveJobs, StoredItems


class Table:
    """Stored items by job id; counts the reads and the items each brought."""

    def __init__(self, count: int) -> None:
        self.items = {str(n): {"job_id": str(n), "version": 1} for n in range(count)}
        self.reads: list[int] = []

    def read(self, job_ids):
        self.reads.append(len(job_ids))
        return {job_id: self.items[job_id] for job_id in job_ids if job_id in self.items}


def numbers(first: int, last: int) -> list[str]:
    return [str(n) for n in range(first, last)]


def test_going_through_the_active_jobs_in_order_reads_a_hundred_a_call_and_holds_a_bounded_number():
    table = Table(1000)
    items = StoredItems(table.read, held=400)
    active = ActiveJobs(table.items, items)
    seen = [job_id for job_id, item in active.items() if item["job_id"] == job_id]
    assert seen == list(table.items)
    assert table.reads == [READ_AHEAD] * 10
    assert len(items) == 400


def test_the_jobs_the_index_gave_are_read_again_only_past_the_items_held():
    table = Table(400)
    items = StoredItems(table.read, held=300)
    for job_id, item in table.items.items():
        items.hold_while_room(job_id, item)
    assert len(items) == 300
    active = ActiveJobs(table.items, items)
    assert [job_id for job_id, _ in active.items()] == list(table.items)
    assert table.reads == [READ_AHEAD]  # 300-399


def test_a_listing_pages_items_are_kept_over_what_was_not_asked_for_and_the_oldest_asked_go_first():
    table = Table(600)
    items = StoredItems(table.read, held=300)
    for job_id in numbers(0, 300):  # the index's first jobs
        items.hold_while_room(job_id, table.items[job_id])
    # When a listing's page names jobs the poll does not hold
    assert len(items.items_of(numbers(300, 400))) == 100
    # Then the page's items stay for its decisions, and the oldest not asked for yet are let go
    assert all(items.holds(job_id) for job_id in numbers(100, 400)) and len(items) == 300
    assert not any(items.holds(job_id) for job_id in numbers(0, 100))
    active = ActiveJobs(table.items, items)
    assert all(active[job_id]["job_id"] == job_id for job_id in numbers(300, 400)) and table.reads == [100]
    # And once more than IN_USE items were asked for, those asked for longest ago go first
    items.items_of(numbers(400, 500))
    items.items_of(numbers(500, 600))
    held = [job_id for job_id in table.items if items.holds(job_id)]
    assert held == numbers(200, 300) + numbers(400, 600) and IN_USE == 200


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
