"""Sweep shards: consecutive variant ranges, and a shard's slice of an expanded sweep."""

import pytest

from engine.sweep import SweepError, expand, shard_bounds, shard_variants

SPEC = {
    "name": "s",
    "entry": [{"name": "rsi_oversold", "timeframe": "1h", "params": {"window": 14}}],
    "exit": [],
}


def test_bounds_cover_every_variant_once_in_order() -> None:
    for count, size in ((1, 1), (10, 3), (12, 3), (1000, 1000), (1001, 1000), (7, 50)):
        bounds = shard_bounds(count, size)
        covered = [i for lo, hi in bounds for i in range(lo, hi)]
        assert covered == list(range(count)), (count, size)
        assert all(0 < hi - lo <= size for lo, hi in bounds)
    with pytest.raises(ValueError):
        shard_bounds(10, 0)


def test_a_slice_keeps_the_whole_sweeps_numbers() -> None:
    variants = expand(SPEC, {"entry[0].params.window": [5, 7, 9, 11, 13]})
    part = shard_variants(variants, (1, 4))
    assert [v.number for v in part] == [2, 3, 4]
    assert [v.params["entry[0].params.window"] for v in part] == [7, 9, 11]
    assert shard_variants(variants, None) == variants
    for bad in ((3, 3), (4, 6), (-1, 2)):
        with pytest.raises(SweepError):
            shard_variants(variants, bad)
