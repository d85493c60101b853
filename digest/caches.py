"""A cache that forgets what was least recently used past a bound: memory stays flat however
many distinct things a cycle asks about (readers' own topic lines, queries)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The `size` entries last stored or read, the oldest forgotten first."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """Return an entry (None if absent), now the most recently used."""
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, key: K, value: V) -> V:
        """Store an entry (forgetting the oldest past the bound); return its value."""
        self.entries[key] = value
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value
