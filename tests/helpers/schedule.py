"""The order of the tests: every xdist worker starts with its share of the slow ones.

`make test` runs `pytest -n 3 --dist worksteal`, which hands each worker one contiguous third of
the collected order at the start, then lets an idle worker take the second half of the longest
queue. Sorting the slow tests to the front would give them all to the first worker, and the
others would take them from it late, from the end: the longest test of the suite once started
45 s into a 66 s run. So the slow tests go to the workers by module (a module's session or
module fixtures start once), heaviest first, each to the least loaded worker, and each worker's
third starts with its slow tests, followed by the others in file order.

A slow test's weight is its marker's `seconds` (`@pytest.mark.slow(seconds=15)`), 1 by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Item(Protocol):
    """What the order needs of a test: its module's path and its markers."""

    @property
    def nodeid(self) -> str: ...

    def get_closest_marker(self, name: str): ...


T = TypeVar("T", bound=Item)


def weight(item: Item) -> float:
    """Return a test's expected seconds if it is slow, else 0."""
    marker = item.get_closest_marker("slow")
    return 0.0 if marker is None else float(marker.kwargs.get("seconds", 1.0))


def thirds(total: int, workers: int) -> list[int]:
    """Return the sizes of xdist worksteal's first hand-out of `total` tests to `workers`."""
    sizes = []
    for remaining in range(workers, 0, -1):
        sizes.append(total // remaining)
        total -= sizes[-1]
    return sizes


def order(items: Sequence[T], workers: int) -> list[T]:
    """Return the tests in the order that starts every worker with its share of slow ones."""
    slow = [item for item in items if weight(item)]
    fast = [item for item in items if not weight(item)]
    modules: dict[str, list[T]] = {}
    for item in slow:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    shares: list[list[T]] = [[] for _ in range(max(workers, 1))]
    loads = [0.0] * len(shares)
    for tests in sorted(modules.values(), key=lambda tests: -sum(map(weight, tests))):
        least = loads.index(min(loads))
        shares[least] += sorted(tests, key=lambda item: -weight(item))
        loads[least] += sum(map(weight, tests))
    ordered: list[T] = []
    rest = iter(fast)
    for share, size in zip(shares, thirds(len(items), len(shares)), strict=True):
        ordered += share
        ordered += [item for _, item in zip(range(size - len(share)), rest, strict=False)]
    return ordered + list(rest)
