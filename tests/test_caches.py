"""Recent: the entries last used are kept, the oldest forgotten past the bound."""

from __future__ import annotations

from digest.caches import Recent


def test_the_least_recently_used_entry_is_forgotten_first():
    cache: Recent[str, int | None] = Recent(2)
    cache.put("a", 1)
    cache.put("b", None)  # a value of None is kept (in tells it from an absent one)
    assert cache.get("a") == 1  # read: now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache and len(cache) == 2
    assert cache.get("b") is None and cache.put("a", 4) == 4 and cache.get("a") == 4
