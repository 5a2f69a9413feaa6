"""Every numba kernel of the engine: arrays in, arrays out. Used by engine modules only."""

__all__: list[str] = []
