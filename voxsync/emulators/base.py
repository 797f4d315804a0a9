"""What every emulator shares: a loopback server base and a thread registry.

An emulator subclasses :class:`EmulatorServer`, names itself, and fills in
the hooks it needs:

``name``
    Class attribute; threads are named ``voxsync-emulator-<name>-<role>-<n>``.
:meth:`~EmulatorServer._prepare`
    Called by :meth:`~EmulatorServer.start` after the engine is made and
    before the port is bound (build the protocol's server objects).
:meth:`~EmulatorServer._serve`
    Start serving the bound listening socket. The default runs an accept
    loop that hands each connection to :meth:`~EmulatorServer._handle` on a
    thread of its own; a server library with its own loop overrides it.
:meth:`~EmulatorServer._handle`
    Serve one accepted connection (default accept loop only).
:meth:`~EmulatorServer._close_clients`
    Called by :meth:`~EmulatorServer.stop` before the listener closes: say
    goodbye the protocol's way and close the clients' sockets.
:meth:`~EmulatorServer.env`
    The environment variables that point a client at the emulator.

The base does the rest: the recognition engine (made from a name, or
given), binding (port 0 picks a free one), ``with`` blocks, sockets that
``stop()`` shuts down, and joining every thread the emulator started::

    class EchoEmulator(EmulatorServer):
        name = "echo"

        def _handle(self, sock):
            while not self.stopping.is_set():
                data = sock.recv(4096)
                if not data:
                    return
                sock.sendall(data)

    with EchoEmulator() as emu:
        print(emu.base_url)
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, TypeVar

__all__ = ["THREAD_PREFIX", "EmulatorServer", "ThreadRegistry", "url_host"]

log = logging.getLogger(__name__)

#: Every emulator thread's name starts with this.
THREAD_PREFIX = "voxsync-emulator"

_Self = TypeVar("_Self", bound="EmulatorServer")


class ThreadRegistry:
    """Named daemon threads of one emulator, so that ``stop()`` can join them all.

    Parameters
    ----------
    prefix : str
        Thread names are ``<prefix>-<role>-<n>``.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []

    def new(
        self, role: str, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> threading.Thread:
        """A daemon thread, registered but not started."""
        thread = threading.Thread(
            target=target,
            args=args,
            kwargs=kwargs,
            name=f"{self.prefix}-{role}-{next(self._count)}",
            daemon=True,
        )
        self.adopt(thread)
        return thread

    def start(
        self, role: str, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> threading.Thread:
        """Start ``target(*args, **kwargs)`` on a new registered daemon thread."""
        thread = self.new(role, target, *args, **kwargs)
        thread.start()
        return thread

    def adopt(self, thread: threading.Thread, role: Optional[str] = None) -> None:
        """Register a thread made elsewhere (a library's); ``role`` renames it."""
        if role is not None:
            thread.name = f"{self.prefix}-{role}-{next(self._count)}"
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident]
            self._threads.append(thread)

    def threads(self) -> List[threading.Thread]:
        """The registered threads (alive, or not started yet)."""
        with self._lock:
            return list(self._threads)

    def join_all(self, timeout: float) -> List[threading.Thread]:
        """Join every registered thread but the caller's; return those still alive."""
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        while True:
            alive = [t for t in self.threads() if t is not current and t.is_alive()]
            if not alive or time.monotonic() >= deadline:
                return alive
            alive[0].join(max(0.0, min(0.2, deadline - time.monotonic())))


def url_host(host: str) -> str:
    """``host`` as it goes in a URL that a local client can use."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class EmulatorServer:
    """Base of every emulator: engine, listening socket, threads, start and stop.

    Parameters
    ----------
    host : str
        Interface to listen on.
    port : int
        TCP port; 0 picks a free one (read :attr:`port` or :attr:`base_url`
        after :meth:`start`).
    engine : None, str or engine object
        ``"pocketsphinx"`` (default), ``"scripted"``, or an engine from
        :func:`voxsync.emulators.engine.make_engine` (then shared, not closed
        by :meth:`stop`).
    **engine_options
        Passed to ``make_engine`` when ``engine`` is a name.

    Attributes
    ----------
    threads : ThreadRegistry
        Every thread the emulator runs; :meth:`stop` joins them.
    stopping : threading.Event
        Set by :meth:`stop`; long waits in handlers should watch it.
    engine : object
        The recognition engine, once started.
    """

    #: Names the emulator's threads and log lines.
    name = "emulator"
    #: Seconds :meth:`stop` waits for the threads by default.
    join_timeout = 5.0

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, engine: Any = None, **engine_options: Any
    ) -> None:
        self.host = host
        self.port = port
        self.engine: Any = None
        self.threads = ThreadRegistry(f"{THREAD_PREFIX}-{self.name}")
        self.stopping = threading.Event()
        self._engine_spec = engine
        self._engine_options = engine_options
        self._listener: Optional[socket.socket] = None
        self._sockets: Set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._running = False

    # ------------------------------------------------------------ info
    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{url_host(self.host)}:{self.port}"

    @property
    def engine_kind(self) -> str:
        """``"pocketsphinx"``, ``"scripted"`` or the engine's own ``kind``."""
        return str(getattr(self.engine, "kind", "") or "")

    def env(self) -> Dict[str, str]:
        """Environment variables that point a client at this emulator.

        ``voxsync emulate NAME`` prints them as ``export`` lines to paste
        into a shell. Subclasses say which; the base has none.
        """
        return {}

    # ------------------------------------------------------- lifecycle
    def start(self: _Self) -> _Self:
        """Make the engine, bind, serve in background threads; return ``self``."""
        if self._running:
            return self
        self.stopping.clear()
        self.engine = self._make_engine()
        try:
            self._prepare()
            listener = socket.create_server((self.host, self.port), backlog=128)
        except BaseException:
            self._close_engine()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._running = True
        self._serve(listener)
        log.info("%s emulator listening on %s", self.name, self.base_url)
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Disconnect every client, stop serving, join every thread (idempotent)."""
        if not self._running:
            return
        self._running = False
        self.stopping.set()
        try:
            self._close_clients()
        except Exception:
            log.debug("%s emulator: closing the clients failed", self.name, exc_info=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            _shutdown(listener)
            listener.close()
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)
        left = self.threads.join_all(self.join_timeout if timeout is None else timeout)
        if left:
            log.warning(
                "%s emulator: threads still running after stop: %s",
                self.name,
                [t.name for t in left],
            )
        self._close_engine()
        log.info("%s emulator on %s stopped", self.name, self.base_url)

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._running else "stopped"
        return f"<{type(self).__name__} {where}>"

    def track_socket(self, sock: socket.socket, open: bool = True) -> None:
        """Have :meth:`stop` shut ``sock`` down (``open=False`` forgets it)."""
        with self._sockets_lock:
            if open:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    # ----------------------------------------------------------- hooks
    def _prepare(self) -> None:
        """Build the protocol's server objects (engine made, port not bound yet)."""

    def _serve(self, listener: socket.socket) -> None:
        """Start serving ``listener``; by default an accept loop on thread ``accept``."""
        self.threads.start("accept", self._accept_loop, listener)

    def _handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection (on its own thread ``conn``)."""
        raise NotImplementedError(f"{type(self).__name__} must override _handle() or _serve()")

    def _close_clients(self) -> None:
        """Say goodbye to the clients the protocol's way (called by :meth:`stop`)."""

    # ------------------------------------------------------- internals
    def _make_engine(self) -> Any:
        spec = self._engine_spec
        if spec is not None and not isinstance(spec, str):
            return spec
        from voxsync.emulators.engine import make_engine

        return make_engine(spec or "pocketsphinx", **self._engine_options)

    def _close_engine(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None and engine is not self._engine_spec and hasattr(engine, "close"):
            engine.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self.stopping.is_set():
            try:
                sock, _addr = listener.accept()
            except OSError:
                return
            if self.stopping.is_set():
                sock.close()
                return
            self.threads.start("conn", self._serve_one, sock)

    def _serve_one(self, sock: socket.socket) -> None:
        self.track_socket(sock)
        try:
            self._handle(sock)
        except OSError as exc:
            log.debug("%s emulator: socket error: %s", self.name, exc)
        except Exception:
            log.exception("%s emulator: connection handler failed", self.name)
        finally:
            self.track_socket(sock, open=False)
            try:
                sock.close()
            except OSError:
                pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
