"""The summary of one run: counts, throughput and latency percentiles in flat memory."""

from __future__ import annotations

import collections
import math
import time

import attrs

from .._outcomes import OutcomeStatus

__all__ = ["Summary"]

_BUCKETS_PER_E = 100.0
_SMALLEST = 1e-6


def _bucket(seconds: float) -> int:
    return round(math.log(max(seconds, _SMALLEST)) * _BUCKETS_PER_E)


def _bucket_value(bucket: int) -> float:
    return math.exp(bucket / _BUCKETS_PER_E)


@attrs.define
class Summary:
    """Counts, throughput and latency percentiles of one run."""

    counts: dict[OutcomeStatus, int] = attrs.field(factory=lambda: dict.fromkeys(OutcomeStatus, 0))
    started: float = attrs.field(factory=time.perf_counter)
    elapsed: float = 0.0
    #: Latencies in log-spaced buckets of about 1% width: memory stays flat however many
    #: calls a job makes, and percentiles are exact to about 1%.
    latency_buckets: collections.Counter[int] = attrs.field(factory=collections.Counter)
    #: Rows a job ended without a call (a suppressed number), not counted as calls.
    skipped: int = 0

    def add(self, status: OutcomeStatus, latency: float | None = None) -> None:
        """Count one outcome; ``latency`` only for a row that was sent."""
        self.counts[status] += 1
        if latency is not None:
            self.latency_buckets[_bucket(latency)] += 1

    @property
    def total(self) -> int:
        """Outcomes counted in this run."""
        return sum(self.counts.values())

    def percentile(self, share: float) -> float:
        """Latency percentile in seconds (nearest rank, to about 1%), 0 without samples."""
        samples = sum(self.latency_buckets.values())
        if not samples:
            return 0.0
        rank = max(1, math.ceil(share * samples))
        seen = 0
        for bucket in sorted(self.latency_buckets):
            seen += self.latency_buckets[bucket]
            if seen >= rank:
                return _bucket_value(bucket)
        return _bucket_value(max(self.latency_buckets))

    def stop(self) -> None:
        """Note the run's end."""
        self.elapsed = time.perf_counter() - self.started

    def line(self) -> str:
        """One summary line."""
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        counts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items())
        skipped = f" ({self.skipped} rows skipped, not called)" if self.skipped else ""
        return (
            f"{self.total} calls: {counts}{skipped} | {rate:.1f} calls/s | "
            f"latency p50 {self.percentile(0.5) * 1000:.1f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms | {self.elapsed:.2f} s"
        )
