"""The import layers of pyproject.toml name every module, so none escapes the check."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def contracts() -> dict[str, list[str]]:
    """Return each layers contract's container and the module names of its layers (an
    optional one, which may not exist, in parentheses)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = {}
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            names = [n.strip() for layer in contract["layers"] for n in layer.split("|")]
            found[contract["containers"][0]] = names
    return found


def modules(package: str) -> list[str]:
    """Return the modules and packages directly inside a package of the source tree."""
    folder = ROOT.joinpath(*package.split("."))
    return [
        p.stem if p.is_file() else p.name
        for p in folder.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    ]


def test_every_module_is_in_exactly_one_layer():
    found = contracts()
    assert set(found) == {"digest", "digest.store", "digest.web"}
    for container, names in found.items():
        assert len(names) == len({n.strip("()") for n in names}), f"{container}: one in two layers"
        listed = {n.strip("()") for n in names}
        missing = set(modules(container)) - listed
        assert not missing, f"add {sorted(missing)} to a layer of {container} in pyproject.toml"
        gone = {n for n in names if not n.startswith("(")} - set(modules(container))
        assert not gone, f"{sorted(gone)} of {container}'s layers no longer exist"


def test_no_two_classes_share_a_name():
    """One name, one thing: a class name is defined once in the whole package."""
    import ast
    from collections import Counter

    package = Path(__file__).resolve().parent.parent / "digest"
    names = Counter(
        node.name
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    )
    assert [name for name, count in names.items() if count > 1] == []
