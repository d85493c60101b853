"""The tests' own order (helpers/schedule.py): every worker's first third starts with slow ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from helpers.schedule import order, thirds


@dataclass(frozen=True)
class Case:
    nodeid: str
    slow: dict | None = field(default=None)  # the slow marker's kwargs, if marked

    def get_closest_marker(self, name: str):
        if name != "slow" or self.slow is None:
            return None
        return pytest.mark.slow(**self.slow).mark


def collected() -> list[Case]:
    """Return 40 tests in file order: modules a to e, with slow ones of different weights."""
    tests = [Case(f"tests/test_a.py::t{n}") for n in range(8)]
    tests += [Case(f"tests/test_b.py::t{n}", {}) for n in range(3)]  # three slow, 1 s each
    tests += [Case("tests/test_c.py::big", {"seconds": 15}), Case("tests/test_c.py::small")]
    tests += [Case(f"tests/test_d.py::t{n}", {"seconds": 2}) for n in range(2)]
    tests += [Case(f"tests/test_e.py::t{n}") for n in range(40 - len(tests))]
    return tests


def test_each_workers_first_third_starts_with_its_slow_tests():
    tests = collected()
    ordered = order(tests, 3)
    assert sorted(t.nodeid for t in ordered) == sorted(t.nodeid for t in tests)  # all, once
    assert thirds(40, 3) == [13, 13, 14]  # as worksteal hands them out
    first, second, third = ordered[:13], ordered[13:26], ordered[26:]
    assert first[0].nodeid == "tests/test_c.py::big"  # the heaviest starts at once
    assert [t.nodeid for t in second[:2]] == ["tests/test_d.py::t0", "tests/test_d.py::t1"]
    assert [t.nodeid for t in third[:3]] == [f"tests/test_b.py::t{n}" for n in range(3)]
    assert [t.slow for t in first[1:]] == [None] * 12  # then the others, in file order
    assert [t.nodeid for t in first[1:4]] == [f"tests/test_a.py::t{n}" for n in range(3)]


def test_one_process_runs_the_slow_tests_first_and_the_rest_in_file_order():
    tests = collected()
    ordered = order(tests, 1)
    slow = [t for t in tests if t.slow is not None]
    assert [t.slow is not None for t in ordered] == [True] * len(slow) + [False] * (40 - len(slow))
    assert [t for t in ordered if t.slow is None] == [t for t in tests if t.slow is None]
