"""Where a stream of entries must be cut so that each chunk fits one AWS call's limits: SNS PublishBatch and
EventBridge PutEvents take at most 10 entries and 256 KiB together, an SQS message 256 KiB."""

from __future__ import annotations


class SizeLimitedChunks:
    """Counts entries into chunks of at most `limit` entries and `max_bytes` together, one entry at a time, so
    that a caller can send each chunk as soon as it is full instead of holding them all."""

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.count = 0
        self.size = 0

    def cut_before(self, size: int) -> bool:
        """Whether an entry of `size` bytes starts a new chunk (the first entry never does); counts it into the
        chunk it goes to. An entry larger than `max_bytes` gets a chunk of its own."""
        cut = self.count > 0 and (self.count == self.limit or self.size + size > self.max_bytes)
        if cut:
            self.count = self.size = 0
        self.count += 1
        self.size += size
        return cut
