"""Files that cost seconds to build, built once a run however many xdist workers need them.

A module-scoped fixture runs once in every worker that runs one of its module's tests, and
`make test` spreads a module over up to three workers. The first worker to ask builds the file
in the run's temporary folder (shared by the workers, under a lock); each worker gets its own
copy, so no test sees another's changes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """Return this worker's copy of the file `build(path)` writes once a run, named `name`."""
    own = factory.mktemp(name, numbered=True) / name
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: nothing to share
        build(own)
        return own
    shared = factory.getbasetemp().parent / f"built-once-{name}"  # the run's, not the worker's
    with (shared.parent / f"{shared.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait while the first builds
        if not shared.exists():
            building = shared.parent / f"{shared.name}.building"
            build(building)
            building.rename(shared)
    shutil.copyfile(shared, own)
    return own
