"""The shared `server` and `other_key` fixtures live in tests/conftest.py, so that
tests/client uses the same server."""
