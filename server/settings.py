"""Server settings, read once from arguments and the environment."""

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start; defaults give a working local server."""

    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("BARSTREAM_DATA_DIR", ".barstream"))
    )
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    workers: int = field(default_factory=lambda: _env_int("BARSTREAM_WORKERS", os.cpu_count() or 1))
    max_run_seconds: float = field(
        default_factory=lambda: _env_float("BARSTREAM_MAX_RUN_SECONDS", 3600.0)
    )
    max_body_bytes: int = field(
        default_factory=lambda: _env_int("BARSTREAM_MAX_BODY_BYTES", 1 << 20)
    )
    max_attempts: int = 3
    cancel_grace_seconds: float = field(
        default_factory=lambda: _env_float("BARSTREAM_CANCEL_GRACE_SECONDS", 10.0)
    )
    max_active_runs: int = field(default_factory=lambda: _env_int("BARSTREAM_MAX_ACTIVE_RUNS", 50))
    lease_seconds: float = field(
        default_factory=lambda: _env_float("BARSTREAM_LEASE_SECONDS", 30.0)
    )
    sync_slots: int = field(default_factory=lambda: _env_int("BARSTREAM_SYNC_SLOTS", 0))
    bulk_max: int = field(default_factory=lambda: _env_int("BARSTREAM_BULK_MAX", 50))
    # Seed 003: credits a run costs a user whose balance is metered; requests per key per minute.
    run_credits: Decimal = field(
        default_factory=lambda: Decimal(os.environ.get("BARSTREAM_RUN_CREDITS") or "1")
    )
    public_rate_per_minute: int = field(
        default_factory=lambda: _env_int("BARSTREAM_PUBLIC_RATE_PER_MINUTE", 60)
    )
    max_active_jobs: int = field(default_factory=lambda: _env_int("BARSTREAM_MAX_ACTIVE_JOBS", 5))
    job_weight_per_minute: int = field(
        default_factory=lambda: _env_int("BARSTREAM_JOB_WEIGHT_PER_MINUTE", 1200)
    )
    signature_window_seconds: float = field(
        default_factory=lambda: _env_float("BARSTREAM_SIGNATURE_WINDOW_SECONDS", 300.0)
    )
    header_timeout_seconds: float = field(
        default_factory=lambda: _env_float("BARSTREAM_HEADER_TIMEOUT_SECONDS", 10.0)
    )
    max_connections: int = field(
        default_factory=lambda: _env_int("BARSTREAM_MAX_CONNECTIONS", 4096)
    )
    max_connections_per_client: int = field(
        default_factory=lambda: _env_int("BARSTREAM_MAX_CONNECTIONS_PER_CLIENT", 256)
    )
    # A sweep of more variants than this is split into shards of this many, which any node
    # (and any worker of one node) may claim.
    sweep_shard_size: int = field(
        default_factory=lambda: _env_int("BARSTREAM_SWEEP_SHARD_SIZE", 1000)
    )
    poll_seconds: float = 1.0
    ws_ping_seconds: float = 20.0
    # The demo data runs from 2024-01-01 to this minute (ISO 8601, naive = UTC); unset: now.
    demo_end: str | None = field(
        default_factory=lambda: os.environ.get("BARSTREAM_DEMO_END") or None
    )
    chunk_bars: int = field(default_factory=lambda: _env_int("BARSTREAM_CHUNK_BARS", 20_000))
    pace_seconds: float = field(default_factory=lambda: _env_float("BARSTREAM_PACE_SECONDS", 0.0))
    node_id: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    # The bar store; several nodes share one directory (README: Running several nodes).
    bars_path: Path | None = field(
        default_factory=lambda: Path(p) if (p := os.environ.get("BARSTREAM_BARS_DIR")) else None
    )

    def __post_init__(self) -> None:
        if self.sweep_shard_size < 1:
            raise ValueError("BARSTREAM_SWEEP_SHARD_SIZE must be a whole number of at least 1")

    @property
    def bars_dir(self) -> Path:
        return self.bars_path or self.data_dir / "bars"

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "pg"
