"""The wire contract (pydantic and the standard library only): one module per concern or dialect.

Import the models from their modules: `protocol.requests`, `protocol.results`, `protocol.events`,
`protocol.errors`, `protocol.enums`, `protocol.strategies`, `protocol.params` (execution settings
built from the engine's declarations in execution_settings.json), `protocol.times` (the wire's
timestamps), and the seed dialects `protocol.v1`, `protocol.seed003`, `protocol.seed004`.
"""

__all__ = [
    "enums", "errors", "events", "params", "requests", "results", "seed003", "seed004",
    "strategies", "times", "v1",
]  # fmt: skip
