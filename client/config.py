"""Where the command line finds the server and the key: flags, then environment, then a file.

    --url / --key                      on the command line
    BARSTREAM_URL / BARSTREAM_API_KEY  in the environment
    url = "…" / api_key = "…"          in $BARSTREAM_CONFIG, else
                                       $XDG_CONFIG_HOME/barstream/config.toml, else
                                       ~/.config/barstream/config.toml

The first one set wins, for the URL and the key separately; the URL defaults to
http://127.0.0.1:8000.
"""

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.wire import DEFAULT_URL

__all__ = ["ConfigError", "Settings", "config_path", "resolve"]


class ConfigError(Exception):
    """The config file cannot be read."""


@dataclass(frozen=True)
class Settings:
    """The server to talk to, the key to use, and where each came from."""

    url: str
    key: str | None
    url_from: str
    key_from: str


def config_path(env: Mapping[str, str]) -> Path:
    """The config file's path (it need not exist)."""
    if env.get("BARSTREAM_CONFIG"):
        return Path(env["BARSTREAM_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "barstream" / "config.toml"


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def resolve(
    url: str | None = None, key: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """The URL and key from the flags, else the environment, else the config file."""
    env = os.environ if env is None else env
    path = config_path(env)
    file = _read(path)
    url_choice = _first(
        (url, "--url"), (env.get("BARSTREAM_URL"), "BARSTREAM_URL"), (file.get("url"), str(path))
    )
    key_choice = _first(
        (key, "--key"),
        (env.get("BARSTREAM_API_KEY"), "BARSTREAM_API_KEY"),
        (file.get("api_key"), str(path)),
    )
    return Settings(
        url=str(url_choice[0] or DEFAULT_URL),
        key=None if key_choice[0] is None else str(key_choice[0]),
        url_from=url_choice[1] or "default",
        key_from=key_choice[1] or "nowhere",
    )


def _first(*choices: tuple[Any, str]) -> tuple[Any, str | None]:
    for value, source in choices:
        if value:
            return value, source
    return None, None
