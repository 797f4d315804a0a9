"""Provider registry: pick a provider by name.

Built-in providers register lazily (their modules are imported on first
use), so ``import voxsync`` stays light. Third-party packages can add their
own with :func:`register_provider`.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Union

from voxsync.errors import ConfigurationError

if TYPE_CHECKING:
    from voxsync.connection import Connection

__all__ = ["DEFAULT_PROVIDER", "available_providers", "connect", "connection", "register_provider"]

#: The provider used when none is named: offline, no account needed.
DEFAULT_PROVIDER = "local"

Factory = Callable[..., "Connection"]

# name -> factory, or "module:attribute" still to be imported
_registry: Dict[str, Union[Factory, str]] = {
    "local": "voxsync.local:create_connection",
    "aiola": "voxsync.aiola:create_connection",
    "uhlive": "voxsync.uhlive:create_connection",
    "palabra": "voxsync.palabra:create_connection",
}
_lock = threading.Lock()


def register_provider(name: str, factory: Union[Factory, str]) -> None:
    """Make ``factory(**options)`` available as ``voxsync.connection(name, **options)``.

    Parameters
    ----------
    name : str
        The provider's name, as users will type it (``--provider NAME`` too).
    factory : callable or str
        Returns a new, not yet connected :class:`~voxsync.connection.Connection`.
        A ``"module:attribute"`` string is imported on first use.
    """
    if not name or not isinstance(name, str):
        raise ConfigurationError("provider name must be a non-empty string")
    with _lock:
        _registry[name] = factory


def available_providers() -> List[str]:
    """Names of the registered providers, the default first."""
    with _lock:
        names = sorted(_registry)
    names.remove(DEFAULT_PROVIDER)
    return [DEFAULT_PROVIDER, *names]


def _factory(name: str) -> Factory:
    with _lock:
        entry = _registry.get(name)
    if entry is None:
        raise ConfigurationError(
            f"unknown provider {name!r}; available: {', '.join(available_providers())}"
        )
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        factory: Factory = getattr(importlib.import_module(module_name), attr)
        with _lock:
            _registry[name] = factory
        return factory
    return entry


def connection(provider: str = DEFAULT_PROVIDER, **options: Any) -> Connection:
    """Create a connection for ``provider`` without connecting it.

    Register handlers, then call ``connect()`` or use it in a ``with`` block.

    Examples
    --------
    >>> conn = voxsync.connection("local")            # doctest: +SKIP
    >>> @conn.on("transcript")                        # doctest: +SKIP
    ... def show(ev): print(ev.text)
    >>> with conn:                                    # doctest: +SKIP
    ...     voxsync.audio.stream_file(conn, "hello.wav")
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
