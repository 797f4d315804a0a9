"""``voxsync emulate palabra``: options and entry point."""

from __future__ import annotations

import argparse

from voxsync.emulators._cli import (
    add_server_arguments,
    engine_options_from_args,
    serve_until_stopped,
)
from voxsync.emulators.palabra.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    PalabraEmulator,
    PalabraFaults,
)

__all__ = ["add_cli_arguments", "emulator_from_args", "run_cli"]


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``voxsync emulate palabra``."""
    add_server_arguments(parser)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="accepted ClientID")
    parser.add_argument(
        "--client-secret", default=DEFAULT_CLIENT_SECRET, help="accepted ClientSecret"
    )
    parser.add_argument("--api-key", help="also accept this token on the sockets (2.x flow)")
    parser.add_argument(
        "--translation",
        action="append",
        dest="translations",
        metavar="TEXT",
        help="scripted translation of the next segment (repeatable, cycles); "
        "default: the source text marked with the target language",
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=10.0, help="SERVICE_TIMEOUT after (s)"
    )
    parser.add_argument("--ready-delay", type=float, default=0.0, help="pipeline start delay (s)")
    parser.add_argument("--rest-5xx", type=int, default=0, help="fault: fail the next N REST calls")
    parser.add_argument("--refuse-auth", action="store_true", help="fault: refuse all credentials")
    parser.add_argument("--drop-after-chunks", type=int, help="fault: cut sockets after N chunks")
    parser.add_argument("--drop-after-seconds", type=float, help="fault: cut sockets after N s")
    parser.add_argument("--stall-after-chunks", type=int, help="fault: go silent after N chunks")
    parser.add_argument(
        "--malformed-after-chunks", type=int, help="fault: send a non-JSON frame after N chunks"
    )
    parser.add_argument(
        "--rate-limit-close", action="store_true", help="fault: close new sockets with 1008"
    )
    parser.add_argument(
        "--double-encode", action="store_true", help="send every data object as a JSON string"
    )


def emulator_from_args(args: argparse.Namespace) -> PalabraEmulator:
    """Build an (unstarted) emulator from :func:`add_cli_arguments` options."""
    faults = PalabraFaults(
        rest_5xx=args.rest_5xx,
        refuse_auth=args.refuse_auth,
        drop_after_chunks=args.drop_after_chunks,
        drop_after_seconds=args.drop_after_seconds,
        stall_after_chunks=args.stall_after_chunks,
        malformed_after_chunks=args.malformed_after_chunks,
        rate_limit_close=args.rate_limit_close,
        double_encode=args.double_encode,
    )
    return PalabraEmulator(
        args.host,
        args.port,
        args.engine,
        translations=args.translations,
        client_id=args.client_id,
        client_secret=args.client_secret,
        api_key=args.api_key,
        faults=faults,
        idle_timeout=args.idle_timeout,
        ready_delay=args.ready_delay,
        **engine_options_from_args(args),
    )


def run_cli(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM; print the base URL first."""
    return serve_until_stopped(emulator_from_args(args))
