"""The import graph: layers point one way, one way into the engine, no private names cross modules."""

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "protocol", "server", "client")
# Which first-party packages each layer may import (STYLE.md: protocol and engine stand alone).
ALLOWED = {
    "engine": {"engine"},
    "protocol": {"protocol"},
    "client": {"client", "protocol"},
    "server": {"server", "protocol", "engine", "client"},  # `barstream` also carries the SDK CLI
}
# Outside the engine, it is reached through its packages' public names only.
ENGINE_DOORS = ("engine", "engine.data")


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module imported from, names) for every import, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield node.lineno, module, [a.name for a in node.names]


def _first_party(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in PACKAGES else None


MODULES = list(_modules())


def test_layers_point_one_way() -> None:
    """engine and protocol import no other first-party package; client only protocol."""
    wrong = []
    for name, path, tree in MODULES:
        layer = name.split(".")[0]
        for line, module, _ in _imports(tree, name, path.name == "__init__.py"):
            target = _first_party(module)
            if target and target not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


def test_no_private_name_crosses_a_module() -> None:
    """`from x import _y` only within x itself (a package may re-export its own modules')."""
    wrong = []
    for name, path, tree in MODULES:
        for line, module, names in _imports(tree, name, path.name == "__init__.py"):
            if not _first_party(module) or module == name:
                continue
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} {module}.{imported}")
    assert wrong == []


def test_the_server_enters_the_engine_through_its_public_names() -> None:
    """Outside the engine: `from engine import X` or `from engine.data import X`, X in __all__."""
    wrong = []
    for name, path, tree in MODULES:
        if name.startswith("engine"):
            continue
        for line, module, names in _imports(tree, name, path.name == "__init__.py"):
            if _first_party(module) != "engine":
                continue
            if module not in ENGINE_DOORS:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
                continue
            public = set(importlib.import_module(module).__all__)
            wrong += [
                f"{path.relative_to(ROOT)}:{line} {module}.{n}" for n in names if n not in public
            ]
    assert wrong == []


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")),
    ids=str,
)
def test_every_package_says_what_it_exports(path: Path) -> None:
    """Each package's __init__ declares __all__, and every name in it resolves."""
    parts = path.with_suffix("").parts[:-1]
    package = importlib.import_module(".".join(parts))
    assert isinstance(getattr(package, "__all__", None), list | tuple), f"{path} has no __all__"
    for exported in package.__all__:
        if (ROOT / Path(*parts) / f"{exported}.py").exists():
            continue  # a submodule named as part of the package's API
        assert getattr(package, exported, None) is not None, f"{path}: {exported}"


def test_one_way_into_a_run() -> None:
    """The worker runs every kind of run through engine.run_job and nothing else of the engine."""
    tree = ast.parse((ROOT / "server" / "worker_main.py").read_text())
    used = {
        n
        for _, module, names in _imports(tree, "server.worker_main", False)
        if _first_party(module) == "engine"
        for n in names
    }
    entry = {"RunSpec", "Stage", "run_job", "warm_up", "Cancelled", "LogLine", "BarStore"}
    assert used <= entry | {"PathError", "TemplateError"}  # a failure's code by its type
    assert "run_job" in used
