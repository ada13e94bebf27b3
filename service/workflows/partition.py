"""Stable partitions of the review space by subject, so several batch workers share a run without overlap.

A subject belongs to partition ``sha256(utf8(subject_normalized))[:8] (big-endian) mod N``: stable across
processes, machines and Python versions (unlike ``hash()``), and every review of one subject lands in the same
partition — which keeps each subject's aggregate updates inside one worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def partition_of(*, subject_normalized: str, count: int) -> int:
    """The partition (0 ≤ k < count) of a normalized subject."""
    digest = hashlib.sha256(subject_normalized.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition ``index`` of ``count`` (written ``K/N`` on the command line)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index}/{self.count}: need 0 <= K < N")

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``"K/N"`` → Partition.

        Raises:
            ValueError: not two integers ``K/N`` with ``0 <= K < N``.
        """
        index, sep, count = text.strip().partition("/")
        if not sep:
            raise ValueError(f"partition must look like K/N, got {text!r}")
        try:
            return cls(int(index), int(count))
        except ValueError as exc:
            raise ValueError(f"partition must look like K/N with 0 <= K < N, got {text!r}") from exc

    def holds(self, subject_normalized: str) -> bool:
        return partition_of(subject_normalized=subject_normalized, count=self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
