"""Write what is derived from the engine's declared parameters; `--check` fails if any drifted.

    python scripts/gen_params.py          # rewrite the files below
    python scripts/gen_params.py --check  # exit 1 naming each file that differs (tests run it)

- protocol/execution_settings.json: the execution settings' declarations (engine.execution),
  from which protocol builds ExecutionSpec, CooldownTier and FeeTier (protocol.params);
- protocol/score_strategy.schema.json: the score strategy's JSON Schema (engine.strategy.score);
- README.md: the tables between `<!-- generated: NAME -->` and `<!-- /generated -->` (the
  execution settings, the signal catalog, the indicators, the template params).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.execution import EXECUTION_PARAMS  # noqa: E402
from engine.params import Param, number_text  # noqa: E402
from engine.strategy.catalog import SIGNALS  # noqa: E402
from engine.strategy.indicators import INDICATORS  # noqa: E402
from engine.strategy.score_schema import score_schema  # noqa: E402
from engine.templates.catalog import TEMPLATES  # noqa: E402

SETTINGS = ROOT / "protocol" / "execution_settings.json"
SCORE_SCHEMA = ROOT / "protocol" / "score_strategy.schema.json"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- generated: (\S+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def as_json(data: object) -> str:
    """Return the file text of a JSON document."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def settings_text() -> str:
    """Return protocol/execution_settings.json as it should be."""
    return as_json({k: p.to_json() for k, p in EXECUTION_PARAMS.items()})


def score_schema_text() -> str:
    """Return protocol/score_strategy.schema.json as it should be."""
    return as_json(score_schema())


def _value(x: object) -> str:
    """Return a default as a table cell."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, str):
        return f"`{x}`"
    return number_text(x) if isinstance(x, int | float) else str(x)


def _param_cell(name: str, p: Param) -> str:
    """Return `name` default (accepted values)."""
    return f"`{name}` {_value(p.default)} ({p.range_text()})"


def _accepts(p: Param) -> str:
    """Return what a setting accepts, for a table cell."""
    if p.fields:
        inner = ", ".join(f"`{k}` {f.range_text()}" for k, f in p.fields.items())
        text = f"{p.range_text()} of {{{inner}}}" if p.kind == "array" else f"{{{inner}}}"
    else:
        text = p.range_text() + (f" ({p.unit})" if p.unit else "")
    return text + (", or null" if p.nullable else "")


def execution_table() -> str:
    """Return the execution settings table."""
    rows = ["| setting | default | accepts | meaning |", "|---|---|---|---|"]
    for name, p in EXECUTION_PARAMS.items():
        rows.append(f"| `{name}` | {_value(p.default)} | {_accepts(p)} | {p.description} |")
    return "\n".join(rows) + "\n"


def signal_table() -> str:
    """Return the signal catalog table."""
    rows = ["| signal | params: default (accepted) | roles | meaning |", "|---|---|---|---|"]
    for name in sorted(SIGNALS):
        s = SIGNALS[name]
        params = ", ".join(_param_cell(k, p) for k, p in s.params.items())
        rows.append(f"| `{name}` | {params} | {', '.join(s.roles)} | {s.description} |")
    return "\n".join(rows) + "\n"


def indicator_table() -> str:
    """Return the indicator registry table."""
    rows = ["| indicator | params in order: default (accepted) | meaning |", "|---|---|---|"]
    for name, spec in INDICATORS.items():
        params = ", ".join(_param_cell(k, p) for k, p in spec.params) or "—"
        rows.append(f"| `{name}` | {params} | {spec.description} |")
    return "\n".join(rows) + "\n"


def template_table() -> str:
    """Return the template params table."""
    rows = ["| template | param | default | accepts | meaning |", "|---|---|---|---|---|"]
    for name, t in TEMPLATES.items():
        for key, p in t.params.items():
            default = "required" if p.required else _value(p.default)
            accepts = p.range_text() + (", or null" if p.default is None else "")
            rows.append(f"| `{name}` | `{key}` | {default} | {accepts} | {p.description} |")
    return "\n".join(rows) + "\n"


TABLES = {
    "execution": execution_table,
    "signals": signal_table,
    "indicators": indicator_table,
    "templates": template_table,
}


def readme_text(text: str) -> str:
    """Return the README with every generated table rewritten."""
    return BLOCK.sub(lambda m: m[1] + TABLES[m[2]]() + m[4], text)


def expected() -> dict[Path, tuple[str, str]]:
    """Return path -> (current text, generated text) for every derived file."""
    readme = README.read_text()
    return {
        SETTINGS: (SETTINGS.read_text() if SETTINGS.exists() else "", settings_text()),
        SCORE_SCHEMA: (SCORE_SCHEMA.read_text(), score_schema_text()),
        README: (readme, readme_text(readme)),
    }


def main() -> int:
    """Rewrite the derived files, or with --check report the ones that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args()
    stale = [path for path, (now, want) in expected().items() if now != want]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from its declarations", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(expected()[path][1])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
