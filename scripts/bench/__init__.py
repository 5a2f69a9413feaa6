"""Helpers of scripts/bench_engine.py: data, the bare-loop floor, barstream and peer runners."""
