"""Provider registry: one :class:`ProviderSpec` per product, found by name.

The ``voxsync`` command (``--provider NAME`` and its options, extra
sub-commands), :func:`voxsync.connection` and ``voxsync emulate NAME`` all
look providers up here, so a product is known the same way everywhere.

Built-in providers register lazily: a spec names its factory, command-line
module and emulator as ``"module:attribute"`` / module strings, imported on
first use, so ``import voxsync`` stays light. Third-party packages add their
own with :func:`register` (or the older :func:`register_provider`).
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from voxsync.errors import ConfigurationError

if TYPE_CHECKING:
    from voxsync.connection import Connection

__all__ = [
    "DEFAULT_PROVIDER",
    "ProviderSpec",
    "available_providers",
    "connect",
    "connection",
    "emulators",
    "provider_spec",
    "provider_specs",
    "register",
    "register_provider",
]

#: The provider used when none is named: offline, no account needed.
DEFAULT_PROVIDER = "local"

Factory = Callable[..., "Connection"]


@dataclasses.dataclass(frozen=True)
class ProviderSpec:
    """Everything voxsync needs to know about one product.

    Parameters
    ----------
    name : str
        What users type: ``voxsync.connection(name)``, ``--provider name``.
    factory : callable or str
        ``factory(**options)`` returns a new, not yet connected
        :class:`~voxsync.connection.Connection`; a ``"module:attribute"``
        string is imported on first use.
    cli : str, optional
        Module with the product's command-line options (conventionally the
        provider package's ``_cli``), imported only by the ``voxsync``
        command. It provides

        ``add_cli_arguments(group)``
            Add options to an :class:`argparse` argument group. Prefix them
            (``--uhlive-model``) or give them a ``dest`` of your own: every
            provider's options share one parser. Several specs may name the
            same module; its options are added once.
        ``options_from_args(args) -> dict``
            Keyword arguments for ``factory`` from the parsed options
            (``args.provider`` says which spec is in use).
        ``add_commands(subparsers, helpers)`` *(optional)*
            Add sub-commands of the product's own (``voxsync translate``):
            ``p = subparsers.add_parser(...)``, then
            ``helpers.provider_options(p)`` for ``--provider`` and every
            provider's options, and ``p.set_defaults(func=run)`` where
            ``run(args, out, err) -> int``. See :class:`voxsync.cli.CommandHelpers`.
    emulator : str, optional
        Name of the product's emulator for ``voxsync emulate NAME``; several
        products of one service share one emulator.
    emulator_module : str, optional
        Module of that emulator (default ``voxsync.emulators.<emulator>``). It
        provides ``add_cli_arguments(parser)`` and ``run_cli(args) -> int``.
    transcribes : bool
        Offered as ``--provider`` to ``voxsync transcribe`` and ``listen``
        (audio in, transcripts out, no command needed to start). False for
        products driven by explicit commands or that take text.
    description : str
        One line for help texts.
    """

    name: str
    factory: Union[Factory, str]
    cli: Optional[str] = None
    emulator: Optional[str] = None
    emulator_module: Optional[str] = None
    transcribes: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError("provider name must be a non-empty string")
        if not (callable(self.factory) or _is_import_path(self.factory)):
            raise ConfigurationError(
                f"provider {self.name!r}: factory must be callable or 'module:attribute'"
            )

    @property
    def emulator_path(self) -> Optional[str]:
        """The emulator's module, or None when the product has no emulator."""
        if self.emulator is None:
            return None
        return self.emulator_module or f"voxsync.emulators.{self.emulator}"

    def load_factory(self) -> Factory:
        """The factory, imported if it was given as a string."""
        if callable(self.factory):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        factory: Factory = getattr(importlib.import_module(module_name), attr)
        return factory


def _is_import_path(value: object) -> bool:
    if not isinstance(value, str):
        return False
    module, sep, attr = value.partition(":")
    return bool(module and sep and attr)


_BUILTIN = (
    ProviderSpec(
        "local",
        "voxsync.local:create_connection",
        cli="voxsync.local._cli",
        emulator=None,
        description="offline recognition with pocketsphinx (default)",
    ),
    ProviderSpec(
        "aiola",
        "voxsync.aiola:create_connection",
        cli="voxsync.aiola._cli",
        emulator="aiola",
        description="aiOla streaming speech-to-text (Socket.IO)",
    ),
    ProviderSpec(
        "uhlive",
        "voxsync.uhlive:create_connection",
        cli="voxsync.uhlive._cli",
        emulator="uhlive",
        description="Uh!ive Conversation API (human to human)",
    ),
    ProviderSpec(
        "uhlive-bot",
        "voxsync.uhlive.bot:create_bot",
        cli="voxsync.uhlive._cli",
        emulator="uhlive",
        transcribes=False,
        description="Uh!ive Recognition API (voicebots, driven by commands)",
    ),
    ProviderSpec(
        "palabra",
        "voxsync.palabra:create_connection",
        cli="voxsync.palabra._cli",
        emulator="palabra",
        description="Palabra speech-to-speech translation (REST sessions + WebSocket)",
    ),
    ProviderSpec(
        "palabra-stt",
        "voxsync.palabra.stt:create_connection",
        cli="voxsync.palabra._cli_realtime",
        emulator="palabra",
        description="Palabra realtime speech-to-text (+ translated text)",
    ),
    ProviderSpec(
        "palabra-tts",
        "voxsync.palabra.tts:create_connection",
        cli="voxsync.palabra._cli_realtime",
        emulator="palabra",
        transcribes=False,
        description="Palabra realtime text-to-speech (text in, audio out)",
    ),
)

_registry: Dict[str, ProviderSpec] = {spec.name: spec for spec in _BUILTIN}
_factories: Dict[str, Factory] = {}
_lock = threading.Lock()


def register(spec: ProviderSpec) -> None:
    """Add (or replace) a product.

    Examples
    --------
    >>> register(ProviderSpec("acme", "acme_voxsync:create_connection",
    ...                       cli="acme_voxsync._cli"))       # doctest: +SKIP
    """
    if not isinstance(spec, ProviderSpec):
        raise ConfigurationError("register() takes a voxsync.providers.ProviderSpec")
    with _lock:
        _registry[spec.name] = spec
        _factories.pop(spec.name, None)


def register_provider(name: str, factory: Union[Factory, str]) -> None:
    """Make ``factory(**options)`` available as ``voxsync.connection(name, **options)``.

    Shorthand for ``register(ProviderSpec(name, factory))``: no command-line
    options, no emulator.

    Parameters
    ----------
    name : str
        The provider's name, as users will type it (``--provider NAME`` too).
    factory : callable or str
        Returns a new, not yet connected :class:`~voxsync.connection.Connection`.
        A ``"module:attribute"`` string is imported on first use.
    """
    register(ProviderSpec(name, factory))


def provider_specs() -> List[ProviderSpec]:
    """Every registered spec, the default provider first, then by name."""
    with _lock:
        specs = sorted(_registry.values(), key=lambda s: (s.name != DEFAULT_PROVIDER, s.name))
    return specs


def available_providers() -> List[str]:
    """Names of the registered providers, the default first."""
    return [spec.name for spec in provider_specs()]


def provider_spec(name: str) -> ProviderSpec:
    """The spec registered as ``name``.

    Raises
    ------
    ConfigurationError
        No such provider; the message lists the available ones.
    """
    with _lock:
        spec = _registry.get(name)
    if spec is None:
        raise ConfigurationError(
            f"unknown provider {name!r}; available: {', '.join(available_providers())}"
        )
    return spec


def emulators() -> Dict[str, str]:
    """``voxsync emulate`` names and their modules, from the registered specs."""
    found: Dict[str, str] = {}
    for spec in provider_specs():
        path = spec.emulator_path
        if spec.emulator is not None and path is not None:
            found.setdefault(spec.emulator, path)
    return dict(sorted(found.items()))


def _factory(name: str) -> Factory:
    with _lock:
        cached = _factories.get(name)
    if cached is not None:
        return cached
    spec = provider_spec(name)
    factory = spec.load_factory()
    with _lock:
        if _registry.get(name) is spec:
            _factories[name] = factory
    return factory


def connection(provider: str = DEFAULT_PROVIDER, **options: Any) -> Connection:
    """Create a connection for ``provider`` without connecting it.

    Register handlers, then call ``connect()`` or use it in a ``with`` block.

    Examples
    --------
    >>> conn = voxsync.connection("local")            # doctest: +SKIP
    >>> @conn.on("transcript")                        # doctest: +SKIP
    ... def show(ev): print(ev.text)
    >>> with conn:                                    # doctest: +SKIP
    ...     voxsync.stream_file(conn, "hello.wav")
    """
    return _factory(provider)(**options)


def connect(
    provider: str = DEFAULT_PROVIDER, *, timeout: float = 10.0, **options: Any
) -> Connection:
    """Create a connection for ``provider`` and connect it.

    Equivalent to ``voxsync.connection(provider, **options)`` followed by
    ``conn.connect(timeout=timeout)``. Handlers registered afterwards miss
    only the ``connect`` event.

    Raises
    ------
    ConfigurationError
        Unknown provider or bad option.
    AuthenticationError, ConnectionError, TimeoutError
        From ``connect()``.
    """
    conn = connection(provider, **options)
    conn.connect(timeout=timeout)
    return conn
