"""One provider registry for voxsync.connection(), the CLI and voxsync emulate."""

from __future__ import annotations

import argparse
import sys
import types
from typing import IO, Any, Dict, Iterator, List

import pytest

import voxsync
import voxsync.providers as providers
from voxsync.cli import CommandHelpers, emulator_names, main
from voxsync.errors import ConfigurationError
from voxsync.local import LocalConnection
from voxsync.providers import ProviderSpec


def run(argv: List[str], capsys: pytest.CaptureFixture[str]) -> tuple:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, ProviderSpec]]:
    """The registry, restored after the test."""
    monkeypatch.setattr(providers, "_registry", dict(providers._registry))
    monkeypatch.setattr(providers, "_factories", {})
    yield providers._registry


def test_builtin_products_are_registered_once_each() -> None:
    names = voxsync.available_providers()
    assert names[0] == "local"
    assert {"local", "aiola", "uhlive", "uhlive-bot"} <= set(names)
    assert len(names) == len(set(names))
    assert emulator_names() == sorted(providers.emulators())
    assert {"aiola", "uhlive"} <= set(emulator_names())
    assert providers.emulators()["uhlive"] == "voxsync.emulators.uhlive"
    bot = providers.provider_spec("uhlive-bot")
    assert bot.emulator == "uhlive" and not bot.transcribes


def test_uhlive_bot_is_found_by_name() -> None:
    from voxsync.uhlive.bot import BotConnection

    conn = voxsync.connection("uhlive-bot", token="not-used-before-connect")
    assert isinstance(conn, BotConnection)
    conn.close()  # never connected: a no-op


def test_unknown_provider_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match="uhlive-bot"):
        voxsync.connection("nosuch")
    with pytest.raises(ConfigurationError):
        ProviderSpec("x", "not an import path")
    with pytest.raises(ConfigurationError):
        ProviderSpec("", "m:f")


def test_register_provider_still_works(registry: Dict[str, ProviderSpec]) -> None:
    made: List[Dict[str, Any]] = []

    def factory(**options: Any) -> LocalConnection:
        made.append(options)
        return voxsync.local.create_connection(**options)

    voxsync.register_provider("mine", factory)
    conn = voxsync.connection("mine", silence_ms=300)
    assert isinstance(conn, LocalConnection) and made == [{"silence_ms": 300}]
    assert "mine" in voxsync.available_providers()
    assert providers.provider_spec("mine").cli is None


def _acme_cli_module() -> types.ModuleType:
    """A third-party provider's command-line module: options and a command of its own."""
    module = types.ModuleType("acme_voxsync_cli")

    def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
        group.add_argument("--acme-silence", type=int, default=400, help="ms (default %(default)s)")

    def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
        return {"silence_ms": args.acme_silence}

    def run_say(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
        conn = CommandHelpers.connection(args, provider="acme")
        out.write(f"{args.provider} {type(conn).__name__} {args.text}\n")
        return 0

    def add_commands(subparsers: Any, helpers: CommandHelpers) -> None:
        p = subparsers.add_parser("acme-say", help="say something with acme")
        p.add_argument("text")
        helpers.provider_options(p)
        helpers.output_options(p)
        p.set_defaults(func=run_say)

    module.add_cli_arguments = add_cli_arguments  # type: ignore[attr-defined]
    module.options_from_args = options_from_args  # type: ignore[attr-defined]
    module.add_commands = add_commands  # type: ignore[attr-defined]
    return module


def test_a_new_provider_plugs_in_with_one_spec_and_its_cli_module(
    registry: Dict[str, ProviderSpec],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "acme_voxsync_cli", _acme_cli_module())
    made: List[Dict[str, Any]] = []

    def factory(**options: Any) -> LocalConnection:
        made.append(options)
        return voxsync.local.create_connection(**options)

    providers.register(
        ProviderSpec(
            "acme",
            factory,
            cli="acme_voxsync_cli",
            emulator="uhlive",  # shares an existing emulator, as products of one service do
        )
    )
    # the library finds it
    assert isinstance(voxsync.connection("acme"), LocalConnection)
    # the command offers its options and its own sub-command
    code, out, _ = run(["acme-say", "--acme-silence", "250", "hello"], capsys)
    assert code == 0 and out == "acme LocalConnection hello\n"
    assert made == [{}, {"silence_ms": 250}]
    code, out, _ = run(["acme-say", "--help"], capsys)
    assert code == 0 and "--acme-silence" in out and "(default 400)" in out
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "acme-say" in out
    assert "{local,acme,aiola,palabra,palabra-stt,uhlive}" in out
    assert emulator_names().count("uhlive") == 1


@pytest.mark.parametrize("command", ["transcribe", "listen"])
def test_command_help_shows_option_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([command, "--help"], capsys)
    assert code == 0, err
    assert "--provider" in out and "default: local" in out


def test_one_name_per_concept() -> None:
    import warnings

    import voxsync.uhlive
    from voxsync.aiola import stream as aiola_stream
    from voxsync.uhlive import conversation, recognition
    from voxsync.uhlive.connection import AUDIO_FORMATS

    # one unknown-event class name; the older names are the same classes
    assert voxsync.UnknownEvent is voxsync.Message
    assert conversation.UnknownEvent is conversation.Unknown
    assert recognition.UnknownEvent.__name__ == conversation.UnknownEvent.__name__
    assert repr(voxsync.UnknownEvent("x", raw={})).startswith("<UnknownEvent")
    # codec constants: AUDIO_CODECS a tuple of names, AUDIO_FORMATS codec -> format
    for codecs in (conversation.AUDIO_CODECS, recognition.AUDIO_CODECS, aiola_stream.AUDIO_CODECS):
        assert isinstance(codecs, tuple)
    for formats, codecs in (
        (AUDIO_FORMATS, conversation.AUDIO_CODECS),
        (aiola_stream.AUDIO_FORMATS, aiola_stream.AUDIO_CODECS),
    ):
        assert tuple(formats) == codecs
    # no gratuitous re-exports from voxsync.uhlive; the old ones still resolve, with a warning
    for name in ("ProtocolError", "Event", "Word", "Unknown"):
        assert name not in voxsync.uhlive.__all__
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(voxsync.uhlive, name) is not None
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), name
    # the vendor guide's names (its snippets run with only the imports changed)
    from voxsync.uhlive import (  # noqa: F401
        Conversation,
        EntityFound,
        Ok,
        build_authentication_request,
        build_conversation_url,
    )


def test_audio_sources_at_the_top_level_load_lazily() -> None:
    import subprocess

    code = (
        "import sys, voxsync\n"
        "assert 'sounddevice' not in sys.modules\n"
        "assert 'MicrophoneStream' not in vars(voxsync)\n"
        "from voxsync.audio import MicrophoneStream, stream_file\n"
        "assert voxsync.MicrophoneStream is MicrophoneStream\n"
        "assert voxsync.stream_file is stream_file\n"
        "assert {'MicrophoneStream', 'stream_file'} <= set(voxsync.__all__)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
    with pytest.raises(AttributeError):
        voxsync.NoSuchThing  # noqa: B018
