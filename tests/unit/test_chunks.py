"""Cutting entries into chunks within an AWS call's limits (SNS PublishBatch, EventBridge PutEvents, an SQS
message): no chunk exceeds its count or its bytes, and no entry is left out or sent twice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transcode_core.chunks import SizeLimitedChunks


def cut(sizes: list[int], limit: int, max_bytes: int) -> list[list[int]]:
    chunks, counter = [], SizeLimitedChunks(limit, max_bytes)
    for size in sizes:
        if counter.cut_before(size) or not chunks:
            chunks.append([])
        chunks[-1].append(size)
    return chunks


def test_a_chunk_closes_at_its_count_or_before_its_bytes_would_overflow():
    assert cut([1] * 25, 10, 1000) == [[1] * 10, [1] * 10, [1] * 5]
    assert cut([400, 400, 400, 100], 10, 1000) == [[400, 400], [400, 100]]
    assert cut([600, 400, 1], 10, 1000) == [[600, 400], [1]]  # exactly full is still within


def test_an_entry_larger_than_the_limit_gets_a_chunk_of_its_own():
    assert cut([10, 5000, 10], 10, 1000) == [[10], [5000], [10]]


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200), st.integers(1, 12))
def test_every_entry_goes_once_in_order_and_no_chunk_breaks_a_limit_it_could_keep(sizes, limit):
    chunks = cut(sizes, limit, 1000)
    assert [size for chunk in chunks for size in chunk] == sizes
    assert all(0 < len(chunk) <= limit and sum(chunk) <= 1000 for chunk in chunks)
    # Each chunk was closed only because the next entry would break a limit.
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        assert len(chunk) == limit or sum(chunk) + following[0] > 1000
