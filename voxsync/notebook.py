"""A live transcript view for Jupyter notebooks.

``conn.show()`` (or ``LiveView(conn).show()``) puts one output under the
current cell and rewrites it in place while the stream runs:

* partial transcripts are rewritten, final ones appended;
* translations appear beside the transcript they translate;
* a small level meter moves while audio is sent.

It uses only the events every provider shares (``transcript``,
``translation``, ``connect``, ``disconnect``, ``error``) and
:func:`voxsync.audio.level` of
:attr:`Connection.last_chunk <voxsync.Connection.last_chunk>`, so it works
for every provider and product. Updates are plain IPython display updates
(``display(..., display_id=True)`` then ``update``): no widget library is
needed, and the output stays readable in a saved notebook.

Threads: the view's handlers run on the connection's dispatcher thread; a
small refresh thread, ``voxsync-<provider>-<n>-view``, redraws the level
meter about ten times a second while the connection is open and ends by
itself when it closes (or when :meth:`LiveView.close` is called).

Outside a Jupyter kernel, :meth:`LiveView.show` raises
:class:`~voxsync.errors.ConfigurationError`; ``str(view)`` still renders the
transcript as text.
"""

from __future__ import annotations

import contextvars
import html
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from voxsync.errors import ConfigurationError, VoxsyncError
from voxsync.events import Transcript, Translation

if TYPE_CHECKING:  # pragma: no cover
    from voxsync.connection import Connection

__all__ = ["LiveView", "level_bar"]

#: Seconds between two redraws of the level meter.
REFRESH_INTERVAL = 0.1
#: Audio is shown as flowing while the last chunk is younger than this.
_FLOWING = 0.5
_BAR_CELLS = 10


def level_bar(level: float, cells: int = _BAR_CELLS) -> str:
    """A text meter for an RMS level (0.0 ... 1.0), on a -60 ... 0 dBFS scale.

    Examples
    --------
    >>> level_bar(0.0)
    '▱▱▱▱▱▱▱▱▱▱'
    >>> level_bar(1.0)
    '▰▰▰▰▰▰▰▰▰▰'
    >>> level_bar(0.03)          # about -30 dBFS: half way
    '▰▰▰▰▰▱▱▱▱▱'
    """
    if level <= 0:
        filled = 0
    else:
        db = 20 * math.log10(min(level, 1.0))
        filled = max(0, min(cells, round((db + 60) / 60 * cells)))
    return "▰" * filled + "▱" * (cells - filled)


@dataclass
class _Line:
    text: str
    speaker: Optional[str]
    id: Optional[str]
    translations: List[str]


class LiveView:
    """A transcript of ``conn`` that updates in place under a notebook cell.

    Parameters
    ----------
    conn : Connection
        Any voxsync connection, connected or not yet.
    max_lines : int
        Final lines kept on screen; older ones are summarised as a count.

    Notes
    -----
    Create it (or call ``conn.show()``) in the cell that should hold the
    view. The handlers it registers run on the connection's dispatcher
    thread; :meth:`close` removes them.
    """

    def __init__(self, conn: Connection, *, max_lines: int = 200) -> None:
        if max_lines < 1:
            raise ConfigurationError(f"max_lines must be >= 1, got {max_lines!r}")
        self._conn = conn
        self._max_lines = max_lines
        self._lock = threading.RLock()
        self._lines: List[_Line] = []
        self._dropped = 0
        self._partials: Dict[Optional[str], str] = {}
        self._status = "waiting"
        self._errors: List[str] = []
        self._handle: Any = None
        self._closed = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self._sent_mark = (0, 0.0)  # (bytes queued, when it last changed)
        self._handlers: Dict[str, Callable[..., Any]] = {
            "connect": self._on_connect,
            "disconnect": self._on_disconnect,
            "error": self._on_error,
            "transcript": self._on_transcript,
        }
        if "translation" in conn.event_names:
            self._handlers["translation"] = self._on_translation
        for name, fn in self._handlers.items():
            conn.on(name, fn)
        if conn.connected:
            self._status = "open"

    # ---------------------------------------------------------------- public
    def show(self) -> LiveView:
        """Display the view under the current cell and keep it updated.

        Returns
        -------
        LiveView
            ``self``.

        Raises
        ------
        ConfigurationError
            Not running inside a Jupyter (IPython) kernel.
        """
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            raise ConfigurationError(
                "show() needs IPython in a Jupyter kernel; in scripts use handlers or events()"
            ) from None
        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            raise ConfigurationError(
                "show() needs a Jupyter kernel; in scripts use handlers or events()"
            )
        self._handle = display(self, display_id=True)  # type: ignore[no-untyped-call]
        if self._conn.connected:
            self._start_ticker()
        return self

    @property
    def lines(self) -> List[str]:
        """The final transcript lines shown (speaker prefix included)."""
        with self._lock:
            return [self._line_text(line) for line in self._lines]

    @property
    def partial(self) -> str:
        """The partial transcripts shown, joined with ``" / "``."""
        with self._lock:
            return " / ".join(self._partials.values())

    def close(self) -> None:
        """Stop updating and remove the view's handlers (the output stays)."""
        self._closed.set()
        for name, fn in self._handlers.items():
            self._conn.off(name, fn)
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(2 * REFRESH_INTERVAL + 1)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the view now (any thread)."""
        handle = self._handle
        if handle is not None:
            handle.update(self)

    # -------------------------------------------------------------- handlers
    def _on_connect(self) -> None:
        with self._lock:
            self._status = "open"
        self._start_ticker()
        self.refresh()

    def _on_disconnect(self, ev: Any) -> None:
        with self._lock:
            self._status = f"closed ({ev.reason})"
            self._partials.clear()
        self._closed.set()
        self.refresh()

    def _on_error(self, err: BaseException) -> None:
        with self._lock:
            self._errors.append(f"{type(err).__name__}: {err}")
        self.refresh()

    def _on_transcript(self, ev: Transcript) -> None:
        with self._lock:
            if not ev.is_final:
                self._partials[ev.speaker] = ev.text
            else:
                self._partials.pop(ev.speaker, None)
                if ev.text.strip():
                    self._lines.append(_Line(ev.text, ev.speaker, ev.id, []))
                    if len(self._lines) > self._max_lines:
                        del self._lines[0]
                        self._dropped += 1
        self.refresh()

    def _on_translation(self, ev: Translation) -> None:
        if not ev.is_final or not ev.text.strip():
            return
        label = f"[{ev.target_language}] {ev.text}" if ev.target_language else ev.text
        with self._lock:
            target = None
            if ev.id is not None:  # beside the transcript it translates
                target = next((ln for ln in reversed(self._lines) if ln.id == ev.id), None)
            if target is None:  # else beside the latest line without one
                target = next((ln for ln in reversed(self._lines) if not ln.translations), None)
            if target is None:
                self._lines.append(_Line("", None, ev.id, [label]))
            else:
                target.translations.append(label)
        self.refresh()

    # ------------------------------------------------------------- rendering
    def _level(self) -> Optional[float]:
        """The input level while audio flows, None when none was sent lately."""
        sent = self._conn.metrics.bytes_queued
        now = time.monotonic()
        if sent != self._sent_mark[0]:
            self._sent_mark = (sent, now)
        if not sent or now - self._sent_mark[1] > _FLOWING:
            return None
        from voxsync.audio.convert import level

        return level(self._conn.last_chunk, self._conn.input_format)

    @staticmethod
    def _line_text(line: _Line) -> str:
        return f"{line.speaker}: {line.text}" if line.speaker else line.text

    def _header(self) -> str:
        level = self._level()
        meter = "no audio" if level is None else f"{level_bar(level)} audio"
        return f"{self._conn.name} · {self._status} · {meter}"

    def __str__(self) -> str:
        with self._lock:
            out = [self._header()]
            if self._dropped:
                out.append(f"… {self._dropped} earlier lines")
            for line in self._lines:
                text = self._line_text(line)
                if line.translations:
                    text = f"{text}  →  {' | '.join(line.translations)}"
                out.append(text)
            for partial in self._partials.values():
                out.append(f"… {partial}")
            out.extend(f"! {err}" for err in self._errors)
            return "\n".join(out)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        with self._lock:
            rows = []
            if self._dropped:
                rows.append(
                    f'<tr><td colspan="2" style="color:#888">'
                    f"… {self._dropped} earlier lines</td></tr>"
                )
            for line in self._lines:
                who = f"<b>{esc(line.speaker)}:</b> " if line.speaker else ""
                tr = "<br>".join(esc(t) for t in line.translations)
                rows.append(
                    f'<tr><td style="text-align:left">{who}{esc(line.text)}</td>'
                    f'<td style="text-align:left;color:#2a6">{tr}</td></tr>'
                )
            for speaker, partial in self._partials.items():
                who = f"{esc(speaker)}: " if speaker else ""
                rows.append(
                    f'<tr><td colspan="2" style="text-align:left;color:#888">'
                    f"<i>{who}{esc(partial)} …</i></td></tr>"
                )
            rows.extend(
                f'<tr><td colspan="2" style="color:#c33">{esc(err)}</td></tr>'
                for err in self._errors
            )
            return (
                '<div class="voxsync-live">'
                f'<div style="color:#666;font-size:smaller">{esc(self._header())}</div>'
                f'<table style="border:none">{"".join(rows)}</table></div>'
            )

    # ---------------------------------------------------------------- ticker
    def _start_ticker(self) -> None:
        with self._lock:
            if self._handle is None or self._ticker is not None or self._closed.is_set():
                return
            context = contextvars.copy_context()
            self._ticker = threading.Thread(
                target=context.run,
                args=(self._tick,),
                name=f"voxsync-{self._conn.name}-view",
                daemon=True,
            )
            self._ticker.start()

    def _tick(self) -> None:
        from voxsync.connection import State

        while not self._closed.wait(REFRESH_INTERVAL):
            if self._conn.state is State.CLOSED:
                break
            try:
                self.refresh()
            except (OSError, ValueError, VoxsyncError):  # the kernel went away
                break
