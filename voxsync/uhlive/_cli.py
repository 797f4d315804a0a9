"""Command-line options of the ``uhlive`` provider (``voxsync --provider uhlive``).

Light imports only: this module is loaded to build the command's help.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict

__all__ = ["add_cli_arguments", "options_from_args"]

_CODECS = ("linear", "g711a", "g711u")


def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the Uh!ive options to ``group``.

    Credentials default to ``UHLIVE_API_CLIENT`` / ``UHLIVE_API_SECRET``; the
    servers to ``UHLIVE_AUTH_SERVER`` / ``UHLIVE_API_URL`` (read when the
    connection is made, never shown in the help).
    """
    group.add_argument(
        "--uhlive-client-id", metavar="ID", help="client id (default: $UHLIVE_API_CLIENT)"
    )
    group.add_argument(
        "--uhlive-client-secret",
        metavar="SECRET",
        help="client secret (default: $UHLIVE_API_SECRET)",
    )
    group.add_argument("--uhlive-user", metavar="USER", help="user name for the password grant")
    group.add_argument(
        "--uhlive-password", metavar="PASSWORD", help="password for the password grant"
    )
    group.add_argument(
        "--uhlive-auth-server",
        metavar="URL",
        help="auth server host or URL (default: $UHLIVE_AUTH_SERVER or id.uh.live)",
    )
    group.add_argument(
        "--uhlive-api-url",
        metavar="URL",
        help="API base URL (default: $UHLIVE_API_URL or wss://api.uh.live)",
    )
    group.add_argument(
        "--uhlive-identifier", metavar="ID", help="customer identifier (default: the client id)"
    )
    group.add_argument(
        "--uhlive-conversation",
        metavar="ID",
        help="conversation to join (default: a new random id)",
    )
    group.add_argument(
        "--uhlive-speaker", metavar="ALIAS", default="voxsync", help="your speaker alias"
    )
    group.add_argument(
        "--uhlive-model", metavar="MODEL", default="fr", help="ASR model: fr, en, es, ..."
    )
    group.add_argument(
        "--uhlive-country", metavar="CC", default="fr", help="speaker's country (ISO 3166-1)"
    )
    group.add_argument(
        "--uhlive-codec",
        choices=_CODECS,
        default="linear",
        help="audio codec sent to the service (audio is converted to it)",
    )
    group.add_argument(
        "--uhlive-readonly",
        action="store_true",
        help="join as an observer: send no audio, print everyone's transcripts",
    )
    group.add_argument(
        "--uhlive-no-interim", action="store_true", help="do not ask for interim transcripts"
    )


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of ``voxsync.uhlive.create_connection`` from parsed options."""
    options: Dict[str, Any] = {
        "speaker": args.uhlive_speaker,
        "model": args.uhlive_model,
        "country": args.uhlive_country,
        "audio_codec": args.uhlive_codec,
        "readonly": bool(args.uhlive_readonly),
        "interim_results": not args.uhlive_no_interim,
    }
    optional = {
        "client_id": args.uhlive_client_id or os.environ.get("UHLIVE_API_CLIENT"),
        "client_secret": args.uhlive_client_secret or os.environ.get("UHLIVE_API_SECRET"),
        "identifier": args.uhlive_identifier,
        "conversation_id": args.uhlive_conversation,
        "auth_server": args.uhlive_auth_server,
        "api_url": args.uhlive_api_url,
    }
    options.update({k: v for k, v in optional.items() if v})
    if args.uhlive_user:
        options["user_id"] = args.uhlive_user
        options["user_pwd"] = args.uhlive_password or ""
    return options
