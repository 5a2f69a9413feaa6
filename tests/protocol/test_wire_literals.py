"""No module builds an event type or an error code from a string literal: they come from the
protocol's enums (EventType, ErrorCode, each surface's Code), so a renamed or removed one is a
failed import or attribute, not a silent wire change."""

import ast
from pathlib import Path

from protocol import seed003, seed004
from protocol.enums import EventType
from protocol.errors import ErrorCode

ROOT = Path(__file__).resolve().parents[2]
CODES = (
    {c.value for c in ErrorCode} | {c.value for c in seed003.Code} | {c.value for c in seed004.Code}
)
TYPES = {t.value for t in EventType}


def _exempt(tree: ast.Module) -> set[int]:
    """Docstrings, and the bodies of the enums that define the values."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            isinstance(b, ast.Name) and b.id == "StrEnum" for b in node.bases
        ):
            out.update(id(n) for n in ast.walk(node))
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            out.add(id(first.value))
    return out


def _is_type_key(node: ast.expr) -> bool:
    """`…["type"]`: an event's type read from its wire form."""
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == "type"
    )


def _literal(node: ast.AST | None, values: set[str]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in values


def offences(source: str) -> list[str]:
    """Where `source` writes an error code or an event type as a string literal."""
    tree = ast.parse(source)
    exempt = _exempt(tree)
    found = []
    for node in ast.walk(tree):
        if _literal(node, CODES) and id(node) not in exempt:
            found.append(f"line {node.lineno}: error code {node.value!r}")  # type: ignore[attr-defined]
        elif isinstance(node, ast.Tuple) and node.elts and _literal(node.elts[0], TYPES):
            found.append(f"line {node.lineno}: event ({node.elts[0].value!r}, …)")  # type: ignore[attr-defined]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if _literal(key, {"type"}) and _literal(value, TYPES):
                    found.append(f"line {node.lineno}: event type {value.value!r}")  # type: ignore[union-attr]
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_type_key(s) for s in sides) and any(_literal(s, TYPES) for s in sides):
                found.append(f"line {node.lineno}: compares an event type with a literal")
    return sorted(found, key=lambda o: int(o.split(":")[0].removeprefix("line ")))


def test_the_scan_finds_each_kind_of_literal() -> None:
    bad = (
        'items = [("log", {"message": "m", "level": "info"})]\n'
        'err = {"code": "worker_lost", "message": "m"}\n'
        'fail("INVALID_PARAMETER")\n'
        'ev = {"type": "progress", "data": {}}\n'
        'terminal = ev["type"] == "state"\n'
    )
    assert [o.split(":")[0] for o in offences(bad)] == [f"line {n}" for n in (1, 2, 3, 4, 5)]


def test_enum_members_and_docstrings_are_not_offences() -> None:
    good = (
        '"""Codes such as "timeout" are named in prose."""\n'
        "class Code(StrEnum):\n"
        '    TIMEOUT = "timeout"\n'
        "items = [LogData(message='m', level='info')]\n"
        'state = row["state"]\n'
    )
    assert offences(good) == []


def test_no_server_or_protocol_module_writes_a_code_or_event_type_as_a_literal() -> None:
    found = {
        str(path.relative_to(ROOT)): got
        for package in ("server", "protocol")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (got := offences(path.read_text()))
    }
    assert found == {}


def _members_named(path: Path) -> set[str]:
    """The ErrorCode members a module names (`ErrorCode.X`) outside the enum itself."""
    tree = ast.parse(path.read_text())
    exempt = _exempt(tree)
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ErrorCode"
        and id(node) not in exempt
    }


def test_every_error_code_is_produced_somewhere() -> None:
    """A member no server module (or protocol/errors.py's own helpers) raises is dead: produce
    it where the situation arises, or remove it. The surfaces' mapping tables do not count."""
    sources = [*sorted((ROOT / "server").rglob("*.py")), ROOT / "protocol" / "errors.py"]
    named = set().union(*(_members_named(p) for p in sources))
    assert set(ErrorCode.__members__) - named == set()
