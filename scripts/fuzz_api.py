"""Fuzz a running barstream server against its own OpenAPI document with schemathesis.

Every operation of `/openapi.json` (but the WebSocket stream, which is not HTTP, and the
document itself), every schemathesis check, every phase (examples, coverage, fuzzing,
stateful): schema-valid and schema-violating requests, undeclared methods, missing and wrong
credentials. Seed 004's routes are signed by a hook (the README's recipe) when `--secret` is
given, else left out. Prints one row per operation — requests, answers by class, failures —
then each failure with the answer and a curl line that reproduces it; exits 1 on any failure
or error. Run:

    .venv/bin/python scripts/fuzz_api.py --url http://127.0.0.1:8000 --key bs_… [--secret bss_…]
        [--examples 100] [--seed 14] [--workers 2] [--json]
        [--exclude-deprecated] [--no-body-coverage]

At 20 examples a run makes about 12,000 requests in about two minutes on two cores, most of them
the coverage phase's boundary values of every body field (`--no-body-coverage` skips those).

The key's user gets whatever the requests create (strategies, a few runs), so point it at a
test user (`barstream keys create --user fuzz --json` prints a key and its signing secret).
tests/server/test_schemathesis.py runs this script, short and seeded, in the test suite.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

STREAM = r"/stream$"  # the WebSocket route: not HTTP, schemathesis cannot speak it
SIGNED = r"^/v1/backtest/jobs"  # seed 004: every request signed
# What a schema-valid request may be answered. 400 is for what no JSON Schema can say: an
# unknown symbol or signal, a date range outside the data, a strategy that does not compile, a
# template's own rules. A query is held to the document alone, so 422 there is a failure; a
# body may also break a rule that ties its fields together (exactly one strategy source, start
# before end, a date-range mode, execution settings the engine cross-checks), which the
# document states in words, so a body's 422 is accepted.
ACCEPTED = ["2xx", "3xx", "400", "401", "402", "403", "404", "409", "429"]
WITH_BODY = ["POST", "PUT", "PATCH"]
# What a schema-violating request may be answered: schemathesis' list, and 413 for a body over
# BARSTREAM_MAX_BODY_BYTES (a string past its maxLength can be one).
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
           "5xx"]  # fmt: skip


class Signer(requests.auth.AuthBase):
    """Seed 004's signature on a prepared request carrying our key (the README's recipe)."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        names = ("X-PipAI-Timestamp", "X-PipAI-Signature")
        if r.headers.get("X-PipAI-API-Key") != self.key or not all(n in r.headers for n in names):
            return r  # a check removed or replaced the credentials on purpose: keep it so
        body = r.body or b""
        body = body.encode() if isinstance(body, str) else body
        ts = str(time.time_ns() // 1_000_000)  # milliseconds, a fresh one per request
        message = f"{ts}\n{r.method}\n{r.path_url}\n{hashlib.sha256(body).hexdigest()}"
        r.headers["X-PipAI-Timestamp"] = ts
        r.headers["X-PipAI-Signature"] = hmac.new(
            self.secret.encode(), message.encode(), hashlib.sha256
        ).hexdigest()
        return r


_signer: Signer | None = None

# CPython 3.11's ast.parse keeps its recursion depth in state shared between threads, so two
# worker threads parsing at once (hypothesis describes its lambdas that way) can raise a
# spurious "AST constructor recursion depth mismatch" SystemError (gh-106905): one at a time.
_parse, _parsing = ast.parse, threading.Lock()


def _parse_alone(*args: Any, **kwargs: Any) -> Any:
    with _parsing:
        return _parse(*args, **kwargs)


ast.parse = _parse_alone  # type: ignore[assignment]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign seed 004 requests (schemathesis cannot compute an HMAC over the body it sends)."""
    if _signer is not None and case.operation.path.startswith("/v1/backtest/jobs"):
        kwargs["auth"] = _signer


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A client never invents a cursor, it pages with the one it was given, so a schema-valid
    case starts at the first page; negative cases still send any cursor (and must get 422)."""
    meta = case.meta
    query = case.query
    if meta is not None and meta.generation.mode.is_positive and isinstance(query, dict):
        case.query = {k: v for k, v in query.items() if k != "cursor"}
    return case


@dataclass
class Operation:
    requests: int = 0
    by_class: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: int = 0


@dataclass
class Summary:
    operations: dict[str, Operation] = field(default_factory=lambda: defaultdict(Operation))
    failures: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ops = {
            label: {"requests": op.requests, **dict(op.by_class), "failures": op.failures}
            for label, op in sorted(self.operations.items())
        }
        return {
            "operations": ops,
            "requests": sum(op.requests for op in self.operations.values()),
            "failures": self.failures,
            "errors": self.errors,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 1),
            "phases": {name: round(t, 1) for name, t in self.phases.items()},
        }


def config(
    key: str, examples: int, seed: int, workers: int, max_time: int | None, body_coverage: bool
) -> Any:
    """Every check and phase, bodies allowed their cross-field 422s, and our key."""
    operations: list[dict[str, Any]] = [{
        "include-method": WITH_BODY,
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
    }]  # fmt: skip
    if not body_coverage:  # the boundary values of every body field: most of a run's requests
        operations += [
            {
                "include-by": f"/requestBody/required == {flag}",
                "phases": {"coverage": {"enabled": False}},
            }
            for flag in ("true", "false")
        ]
    return SchemathesisConfig.from_dict({
        "seed": seed,
        **({"max-time": max_time} if max_time else {}),
        # The key in every form a surface reads, so no check takes a generated one for ours.
        "headers": {"Authorization": f"Bearer {key}", "X-API-Key": key, "X-PipAI-API-Key": key},
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "negative_data_rejection": {"expected-statuses": REFUSED},
        },
        "operations": operations,
        "generation": {"max-examples": examples, "deterministic": True, "database": "none"},
        "cache": {"enabled": False},
        "workers": workers,
        "request-timeout": 120,
    })  # fmt: skip


def fuzz(
    url: str, key: str, secret: str | None = None, *, examples: int = 100, seed: int = 14,
    workers: int = 2, max_time: int | None = None, deprecated: bool = True,
    body_coverage: bool = True,
) -> Summary:  # fmt: skip
    """Run schemathesis against the server at `url` and summarise what it saw."""
    global _signer
    _signer = Signer(key, secret) if secret else None
    cfg = config(key, examples, seed, workers, max_time, body_coverage)
    schema = schemathesis.openapi.from_url(f"{url.rstrip('/')}/openapi.json", config=cfg)
    schema = schema.exclude(path_regex=STREAM)
    if not deprecated:
        schema = schema.exclude(deprecated=True)
    if secret is None:
        schema = schema.exclude(path_regex=SIGNED)
    out, seen, began = Summary(), set(), {}
    start = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            _record(out, event.recorder, seen)
        elif isinstance(event, events.NonFatalError):
            out.errors.append(f"{event.label}: {event.info}")
            if os.environ.get("FUZZ_TRACEBACKS"):
                import traceback

                traceback.print_exception(event.value)
        elif isinstance(event, events.FatalError):
            out.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.PhaseStarted):
            began[event.phase.name.value] = time.monotonic()
        elif isinstance(event, events.PhaseFinished) and event.phase.name.value in began:
            name = event.phase.name.value
            out.phases[name] = time.monotonic() - began[name]
        elif isinstance(event, events.EngineFinished):
            out.stop_reason = str(event.stop_reason)
    out.seconds = time.monotonic() - start
    return out


def _record(out: Summary, recorder: Any, seen: set[tuple[str, ...]]) -> None:
    def label(case_id: str) -> str:
        node = recorder.cases.get(case_id)
        return node.value.operation.label if node is not None else recorder.label

    for case_id, interaction in recorder.interactions.items():
        op = out.operations[label(case_id)]
        op.requests += 1
        status = interaction.response.status_code if interaction.response else None
        op.by_class[f"{status // 100}xx" if status else "none"] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            where = label(case_id)
            out.operations[where].failures += 1
            failure = info.failure
            ident = (where, check.name, failure.title, failure.message.split("\n")[0])
            if ident in seen:
                continue
            seen.add(ident)
            answer = recorder.interactions.get(case_id)
            got = answer.response if answer is not None else None
            out.failures.append({
                "operation": where, "check": check.name, "title": failure.title,
                "message": failure.message, "reproduce": info.code_sample,
                "answer": "" if got is None else
                f"{got.status_code} {got.content[:300].decode(errors='replace')}",
            })  # fmt: skip


def table(summary: Summary) -> str:
    """One row per operation: requests, answers by class, failures; then the totals."""
    classes = ("2xx", "3xx", "4xx", "5xx", "none")
    rows = [("operation", "requests", *classes, "failures")]
    for name, op in sorted(summary.operations.items()):
        rows.append((name, str(op.requests), *(str(op.by_class.get(c, 0)) for c in classes),
                     str(op.failures)))  # fmt: skip
    total = sum(op.requests for op in summary.operations.values())
    failed = sum(op.failures for op in summary.operations.values())
    rows.append((f"{len(summary.operations)} operations", str(total), *("",) * len(classes),
                 str(failed)))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)


def report(summary: Summary) -> str:
    """The table, then every distinct failure and error."""
    phases = ", ".join(f"{name} {t:.1f} s" for name, t in summary.phases.items())
    parts = [
        table(summary),
        f"\n{summary.seconds:.1f} s ({phases}); stopped: {summary.stop_reason}",
    ]
    for f in summary.failures:
        parts.append(f"\nFAILURE {f['operation']} [{f['check']}] {f['title']}\n{f['message']}"
                     f"\n  answer: {f['answer']}\n  {f['reproduce']}")  # fmt: skip
    parts += [f"\nERROR {e}" for e in summary.errors]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("BARSTREAM_URL", "http://127.0.0.1:8000"))
    p.add_argument("--key", default=os.environ.get("BARSTREAM_API_KEY"))
    p.add_argument("--secret", help="the key's signing secret: also fuzz seed 004's routes")
    p.add_argument("--examples", type=int, default=100, help="test cases per operation and phase")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-time", type=int, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--exclude-deprecated",
        action="store_true",
        help="leave out the deprecated v1 alias paths (their canonical paths' handlers)",
    )
    p.add_argument(
        "--no-body-coverage",
        action="store_true",
        help="skip the coverage phase (each field's boundary values) for bodies",
    )
    args = p.parse_args(argv)
    if not args.key:
        p.error("--key (or BARSTREAM_API_KEY) is required")
    summary = fuzz(args.url, args.key, args.secret, examples=args.examples, seed=args.seed,
                   workers=args.workers, max_time=args.max_time,
                   deprecated=not args.exclude_deprecated,
                   body_coverage=not args.no_body_coverage)  # fmt: skip
    if args.json:
        print(report(summary), file=sys.stderr)
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        print(report(summary))
    ok = not summary.failures and not summary.errors and summary.stop_reason == "completed"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
