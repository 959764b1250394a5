"""A clock tests move by hand, for the parts of the service that take a `clock` argument."""

from __future__ import annotations

import time


class FakeClock:
    """Real wall-clock time plus an offset that only `advance` changes; callable like time.time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
