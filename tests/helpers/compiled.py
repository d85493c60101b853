"""Compile digest's templates once per test process, however many environments the tests build.

Every cycle, web app and reading room builds its own jinja2 environment with
`digest.render.make_environment`, and a new environment compiles its templates again: about
16 ms a template, a third of a small cycle's time, some 1,200 times in `make quick`. The tests
share one in-memory bytecode cache instead. Jinja keys it by template name and file and checks
the source, so an operator's template or a changed file is compiled anew; every environment
comes from the same factory with the same options, so the compiled code is the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2

import digest.editions  # the modules that build environments: loaded, so install() finds them
import digest.render
import digest.room
import digest.web.base


class CompiledTemplates(jinja2.BytecodeCache):
    """Keep compiled templates in memory for the whole process."""

    def __init__(self) -> None:
        self.buckets: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Load a template's compiled code, if it was compiled before."""
        if (code := self.buckets.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Keep a template's compiled code."""
        self.buckets[bucket.key] = bucket.bytecode_to_string()


COMPILED = CompiledTemplates()
_make_environment = digest.render.make_environment


def make_environment(extra: Path | None = None) -> jinja2.Environment:
    """Build digest's environment, with the shared compiled templates."""
    env = _make_environment(extra)
    env.bytecode_cache = COMPILED
    return env


def install() -> None:
    """Give every digest module that builds environments the cached factory."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "digest" and (
            getattr(module, "make_environment", None) is _make_environment
        ):
            module.make_environment = make_environment  # type: ignore[attr-defined]
