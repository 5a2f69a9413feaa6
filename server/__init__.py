"""The only package that does I/O: the app (`server.app.create_app`) and the CLI (`server.cli`)."""

__all__ = ["app", "cli"]
