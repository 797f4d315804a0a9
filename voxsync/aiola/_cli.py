"""``--provider aiola`` options of the ``voxsync`` command (light imports only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict

from voxsync.errors import ConfigurationError

__all__ = ["add_cli_arguments", "options_from_args"]


def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the aiOla options to ``group``."""
    group.add_argument(
        "--api-key",
        dest="aiola_api_key",
        default=None,
        metavar="KEY",
        help="aiOla API key (default: $AIOLA_API_KEY)",
    )
    group.add_argument(
        "--access-token",
        dest="aiola_access_token",
        default=None,
        metavar="JWT",
        help="aiOla session token instead of an API key (default: $AIOLA_ACCESS_TOKEN)",
    )
    group.add_argument(
        "--base-url",
        dest="aiola_base_url",
        default=None,
        metavar="URL",
        help="aiOla API host, e.g. an emulator's URL (default: $AIOLA_BASE_URL or https://apis.aiola.ai)",
    )
    group.add_argument(
        "--auth-base-url",
        dest="aiola_auth_base_url",
        default=None,
        metavar="URL",
        help="aiOla auth host (default: $AIOLA_AUTH_BASE_URL, else --base-url, else https://auth.aiola.ai)",
    )
    group.add_argument(
        "--lang",
        dest="aiola_lang",
        default=None,
        metavar="CODE",
        help="aiOla language code (en, de, es, ...)",
    )
    group.add_argument(
        "--keywords",
        dest="aiola_keywords",
        default=None,
        metavar="JSON|FILE",
        help="aiOla keywords, spoken -> written: a JSON object "
        '(\'{"k eight s": "Kubernetes"}\') or a JSON file',
    )


def _keywords(value: str) -> Dict[str, str]:
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise ConfigurationError(f"--keywords: {value!r} is neither a JSON object nor a file")
        text = path.read_text(encoding="utf-8")
    try:
        keywords = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"--keywords: invalid JSON: {exc}") from exc
    if not isinstance(keywords, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keywords.items()
    ):
        raise ConfigurationError(
            '--keywords must be a JSON object of strings: {"spoken": "written"}'
        )
    return keywords


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of :func:`voxsync.aiola.create_connection` from parsed options."""
    options: Dict[str, Any] = {}
    # without either option the client reads AIOLA_API_KEY / AIOLA_ACCESS_TOKEN itself
    api_key = getattr(args, "aiola_api_key", None)
    token = getattr(args, "aiola_access_token", None)
    if api_key:
        options["api_key"] = api_key
    elif token:
        options["access_token"] = token
    for attr, key in (
        ("aiola_base_url", "base_url"),
        ("aiola_auth_base_url", "auth_base_url"),
        ("aiola_lang", "lang_code"),
    ):
        value = getattr(args, attr, None)
        if value:
            options[key] = value
    keywords = getattr(args, "aiola_keywords", None)
    if keywords:
        options["keywords"] = _keywords(keywords)
    return options
