"""Lazy package exports (PEP 562): a package names where each public name lives, and the module
is imported the first time the name is used, so importing the package stays cheap."""

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """Return a package's __getattr__ and __dir__ for `exports` (name -> module)."""
    names = sorted(exports)

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        vars(import_module(package))[name] = value  # later look-ups skip __getattr__
        return value

    def dir_() -> list[str]:
        return names

    return getattr_, dir_
