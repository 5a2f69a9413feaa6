"""The HTTP routes of each surface; `server.app` mounts them."""

__all__ = ["backtests", "meta", "seed003", "seed004", "strategies", "v1", "web"]
