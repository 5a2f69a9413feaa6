"""Bars: the store (memory-mapped per symbol and resolution), import, export, fetch, demo data.

Loaded on first use (PEP 562), so naming the package does not import numpy's heavier users.
"""

from engine.exports import lazy

_EXPORTS = {
    "Bars": "engine.data.bars",
    "BASE_RESOLUTIONS": "engine.data.bars",
    "MINUTE_NS": "engine.data.bars",
    "RESOLUTIONS": "engine.data.bars",
    "iso": "engine.data.bars",
    "parse_iso": "engine.data.bars",
    "BarStore": "engine.data.store",
    "CALENDARS": "engine.data.catalog",
    "FORMATS": "engine.data.importer",
    "ImportFailed": "engine.data.importer",
    "import_csv": "engine.data.importer",
    "write_csv": "engine.data.importer",
    "fetch": "engine.data.fetch",
    "DEMO_SYMBOLS": "engine.data.demo",
    "DemoUpdate": "engine.data.demo",
    "demo_end_ns": "engine.data.demo",
    "generate_bars": "engine.data.demo",
    "update_demo_data": "engine.data.demo",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy(__name__, _EXPORTS)
