"""make bench's fetch measures run against the code as it is (a settings field the fetch
needs, missing from the bench's stand-in, once stopped `make bench` after its send phase)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"


def test_the_fetch_measures_run_and_keep_to_the_floor():
    spec = importlib.util.spec_from_file_location("bench_main", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_main"] = bench
    spec.loader.exec_module(bench)
    seconds, requests = bench.fetch_phase(3, 0.01)
    assert requests == 3 and seconds >= 0.01 * (requests - 1)
    seconds, requests = bench.busy_keyword(600, 0.01)  # two pages of 500 reach the watermark
    assert requests == 2 and seconds >= 0.01
