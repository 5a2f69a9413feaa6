"""PostgreSQL: the embedded cluster, the pool, and the migrations."""

__all__ = ["embedded", "migrate", "pool"]
