"""What the command line shows: a live progress view (rich) on a terminal, plain lines
elsewhere, and tables of runs and metrics."""

from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from client.models import Run
from protocol.events import Event

__all__ = [
    "LiveView",
    "PlainView",
    "View",
    "eta_text",
    "metric_text",
    "metrics_table",
    "run_table",
    "runs_table",
    "view_for",
]

# The order the metrics table lists them in (the README's); others follow alphabetically.
METRIC_ORDER = (
    "duration_days", "equity_final", "equity_peak", "commissions", "exposure", "total_return",
    "buy_and_hold_return", "cagr", "irr_annualized", "volatility_annualized", "sharpe_ratio",
    "sortino_ratio", "calmar_ratio", "alpha", "beta", "benchmark_return", "max_drawdown",
    "avg_drawdown", "max_drawdown_duration", "avg_drawdown_duration",
    "max_drawdown_duration_days", "avg_drawdown_duration_days", "trade_count", "wins", "losses",
    "win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "best_trade_pct",
    "worst_trade_pct", "avg_trade_pct", "expectancy_pct", "profit_factor_pct",
    "max_trade_duration_days", "avg_trade_duration_days", "max_trade_duration_bars",
    "avg_trade_duration_bars", "sqn", "kelly_criterion", "both_hit", "pnl_r", "gross_profit_r",
    "gross_loss_r", "expectancy_r", "avg_win_r", "avg_loss_r",
)  # fmt: skip
RUNNING_METRICS = ("equity", "drawdown", "max_drawdown", "trade_count")
RUNNING_LABELS = {"equity": "equity", "drawdown": "drawdown", "max_drawdown": "max drawdown",
                  "trade_count": "trades"}  # fmt: skip


def metric_text(value: Any) -> str:
    """A metric as the tables show it: integers whole, other numbers to 6 significant digits."""
    if value is None:
        return "null"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:.6g}"


def eta_text(seconds: float | None) -> str:
    """An ETA such as 4s or 2m05s; '-' when unknown."""
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


def _running_text(values: Mapping[str, float | None]) -> str:
    parts = []
    for name in RUNNING_METRICS:
        if name not in values or values[name] is None:
            continue
        v = float(values[name] or 0)
        text = {"equity": f"{v:,.2f}", "trade_count": f"{int(v)}"}.get(name, f"{v:.2%}")
        parts.append(f"{RUNNING_LABELS[name]} {text}")
    return "  ".join(parts)


class View:
    """Shows a followed run's events; subclasses decide how."""

    def __init__(self, console: Console, run_id: str) -> None:
        self.console = console
        self.run_id = run_id
        self.state = "…"
        self.phase = ""
        self.progress = 0.0
        self.eta: float | None = None
        self.running: dict[str, float | None] = {}

    def __enter__(self) -> "View":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Begin showing."""

    def stop(self) -> None:
        """Stop showing (the last state stays on screen)."""

    def note(self, text: str) -> None:
        """A line beside the events (a reconnect, say)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def event(self, event: Event) -> None:
        """Take one event into account."""
        if event.type == "state":
            self.state = str(event.data.state)
            self.on_state()
        elif event.type == "progress":
            self.progress = event.data.progress
            self.phase = event.data.phase or self.phase
            self.eta = event.data.eta_seconds
            self.on_progress()
        elif event.type == "metric" and event.data.running:
            self.running[event.data.name] = event.data.value
        elif event.type == "log":
            self.note(f"log ({event.data.level}): {event.data.message}")

    def on_state(self) -> None:
        """The state changed."""

    def on_progress(self) -> None:
        """Progress arrived."""


class LiveView(View):
    """A live progress bar with state, phase, ETA and the running metrics (a terminal)."""

    def __init__(self, console: Console, run_id: str) -> None:
        super().__init__(console, run_id)
        self.bar = Progress(
            TextColumn("{task.fields[state]:<9}"),
            TextColumn("{task.fields[phase]:<8}"),
            BarColumn(bar_width=32),
            TaskProgressColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            auto_refresh=False,
        )
        self.task = self.bar.add_task("run", total=100, state="…", phase="", eta="-")
        self.live = Live(Group(self.bar, self), console=console, refresh_per_second=8)

    def __rich__(self) -> Text:
        return Text(_running_text(self.running) or " ", style="dim")

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def note(self, text: str) -> None:
        self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _update(self) -> None:
        self.bar.update(
            self.task,
            completed=self.progress * 100,
            state=self.state,
            phase=self.phase,
            eta=eta_text(self.eta),
        )

    on_state = on_progress = _update


class PlainView(View):
    """Plain lines, no control characters: a line per state, per tenth of progress, per phase."""

    def __init__(self, console: Console, run_id: str) -> None:
        super().__init__(console, run_id)
        self.shown: tuple[int, str] = (-1, "")

    def on_state(self) -> None:
        self.note(f"run {self.run_id}: {self.state}")

    def on_progress(self) -> None:
        step = (int(self.progress * 100 + 1e-9) // 10 * 10, self.phase)
        if step == self.shown:
            return
        self.shown = step
        line = f"{step[0]:3d}% {self.phase:<8} ETA {eta_text(self.eta)}"
        running = _running_text(self.running)
        self.note(f"{line}  {running}" if running else line)


def view_for(console: Console, run_id: str) -> View:
    """A live view on a terminal, plain lines otherwise."""
    return LiveView(console, run_id) if console.is_terminal else PlainView(console, run_id)


def _table(*columns: str, plain: bool, right: tuple[str, ...] = ()) -> Table:
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    for col in columns:
        table.add_column(
            col,
            justify="right" if col in right else "left",
            no_wrap=col != "name",
            min_width=36 if col == "run" else None,  # a run id is never cut
        )
    return table


def metrics_table(metrics: Mapping[str, Any], *, plain: bool = False) -> Table:
    """Every metric, one a row."""
    table = _table("metric", "value", plain=plain, right=("value",))
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    for name in sorted(metrics, key=lambda n: (rank.get(n, len(rank)), n.lower())):
        table.add_row(name, metric_text(metrics[name]))
    return table


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def runs_table(runs: Iterable[Run], *, plain: bool = False) -> Table:
    """Runs, one a row: id, state, progress, created, symbols, resolution, name."""
    table = _table(
        "run", "state", "progress", "created", "symbols", "res", "name", plain=plain,
        right=("progress",),
    )  # fmt: skip
    for r in runs:
        table.add_row(
            r.run_id,
            str(r.state) + (" (archived)" if r.archived else ""),
            f"{r.progress:.0%}",
            _when(r.created_at),
            ",".join(r.symbols),
            str(r.config.get("resolution", "")),
            r.name or "",
        )
    return table


def run_table(run: Run, *, plain: bool = False) -> Table:
    """One run's status as field/value rows."""
    c = run.config
    rows = {
        "run": run.run_id,
        "state": str(run.state),
        "progress": f"{run.progress:.0%}",
        "name": run.name or "-",
        "symbols": ",".join(run.symbols),
        "resolution": str(c.get("resolution", "-")),
        "range": f"{c.get('start', '?')} .. {c.get('end', '?')}",
        "capital": metric_text(c.get("capital")),
        "created": _when(run.created_at),
        "started": _when(run.started_at),
        "finished": _when(run.finished_at),
        "archived": _when(run.archived_at) if run.archived else "no",
    }
    if run.error is not None:
        rows["error"] = f"{run.error.code}: {run.error.message}"
    table = _table("field", "value", plain=plain)
    for k, v in rows.items():
        table.add_row(k, v)
    return table
