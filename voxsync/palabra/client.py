"""The :class:`Palabra` client: credentials, REST sessions, translation streams."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from voxsync.palabra import _rest
from voxsync.palabra.errors import AuthError, SessionError
from voxsync.redact import secret_repr

if TYPE_CHECKING:
    from voxsync.palabra.codec import Targets
    from voxsync.palabra.stt import SpeechToText
    from voxsync.palabra.translation import TranslationSession
    from voxsync.palabra.tts import TextToSpeech

__all__ = ["DEFAULT_API_URL", "Palabra", "Session"]

#: Where the REST API lives unless ``api_url`` or ``PALABRA_API_URL`` says otherwise.
DEFAULT_API_URL = "https://api.palabra.ai"


@dataclass(frozen=True, repr=False)
class Session:
    """A streaming session created through the REST API.

    Attributes
    ----------
    id : str
    publisher : str
        The token that opens the session's sockets (a secret: never shown in ``repr``).
    ws_url : str
        The translation socket.
    ws_tts_url : str or None
        The realtime TTS socket.
    subscriber : list of str
    webrtc_url, webrtc_room_name, intent : str or None
    raw : dict
        The reply's ``data`` as received.
    """

    id: str
    publisher: str
    ws_url: str
    ws_tts_url: Optional[str] = None
    subscriber: List[str] = field(default_factory=list)
    webrtc_url: Optional[str] = None
    webrtc_room_name: Optional[str] = None
    intent: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Session:
        """Build from the ``data`` object of a create-session reply."""
        publisher = data["publisher"]
        if isinstance(publisher, list):  # the legacy endpoint gives a list
            publisher = publisher[0] if publisher else ""
        subscriber = data.get("subscriber") or []
        return cls(
            id=str(data.get("id", "")),
            publisher=str(publisher),
            ws_url=str(data["ws_url"]),
            ws_tts_url=data.get("ws_tts_url"),
            subscriber=list(subscriber) if isinstance(subscriber, list) else [str(subscriber)],
            webrtc_url=data.get("webrtc_url"),
            webrtc_room_name=data.get("webrtc_room_name"),
            intent=data.get("intent"),
            raw={k: v for k, v in data.items() if k not in ("publisher", "subscriber")},
        )

    def __repr__(self) -> str:
        return (
            f"<Session id={self.id!r} ws_url={self.ws_url!r} "
            f"publisher={secret_repr(self.publisher)}>"
        )


class Palabra:
    """Client of Palabra's real-time APIs, synchronous.

    Parameters
    ----------
    client_id, client_secret : str or None
        REST credentials; default ``PALABRA_CLIENT_ID`` / ``PALABRA_CLIENT_SECRET``.
        Only the REST calls use them: ``translation(ws_url=..., token=...)``
        needs none.
    api_url : str or None
        Base URL of the REST API; default ``PALABRA_API_URL``, else
        ``https://api.palabra.ai``. Point it at ``voxsync emulate palabra``
        to use the local emulator without changing code.

    Examples
    --------
    >>> palabra = Palabra()                                    # doctest: +SKIP
    >>> with palabra.translation(source="en", targets=["es"]) as session:  # doctest: +SKIP
    ...     session.send_file("speech_en.wav")
    ...     session.end(eos_timeout=4)
    ...     for event in session:
    ...         print(event)
    """

    def __init__(
        self,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        api_url: Optional[str] = None,
    ) -> None:
        self.client_id = client_id if client_id is not None else os.environ.get("PALABRA_CLIENT_ID")
        self._client_secret = (
            client_secret if client_secret is not None else os.environ.get("PALABRA_CLIENT_SECRET")
        )
        url = api_url or os.environ.get("PALABRA_API_URL") or DEFAULT_API_URL
        self.api_url = url.rstrip("/")
        self._http = _rest.make_http(self.api_url, self._secrets())

    def close(self) -> None:
        """Release pooled HTTP connections (the client stays usable)."""
        self._http.close()

    def __enter__(self) -> Palabra:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Palabra api_url={self.api_url!r} client_id={secret_repr(self.client_id)} "
            f"client_secret={secret_repr(self._client_secret)}>"
        )

    # ------------------------------------------------------------------ REST
    def _headers(self) -> Dict[str, str]:
        if not self.client_id or not self._client_secret:
            raise AuthError(
                "no Palabra credentials: set PALABRA_CLIENT_ID and PALABRA_CLIENT_SECRET "
                "(or pass client_id= and client_secret=), or connect with ws_url= and token="
            )
        return {"ClientID": self.client_id, "ClientSecret": self._client_secret}

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_id, self._client_secret) if s)

    def create_session(self, **data: Any) -> Session:
        """Create a streaming session (``POST /session-storage/session``).

        Parameters
        ----------
        **data
            Extra fields of the request's ``data`` (``subscriber_count``, ``intent``).

        Raises
        ------
        AuthError
            No credentials (no request is made), or HTTP 401/403/404.
        SessionError
            Other refusals, or the API stayed unreachable / 5xx over 3 attempts.
        """
        headers = self._headers()
        payload = _rest.request(
            self._http,
            "POST",
            "/session-storage/session",
            headers,
            body={"data": data},
            what="create session",
        )
        return Session.from_data(_rest.session_from_reply(payload))

    def delete_session(self, session: Union[Session, str]) -> None:
        """Delete a session (``DELETE /session-storage/sessions/{id}``); the reply is ignored.

        Raises
        ------
        AuthError, SessionError
            As :meth:`create_session`.
        """
        session_id = session.id if isinstance(session, Session) else str(session)
        if not session_id:
            raise SessionError("delete_session() needs a session with an id")
        _rest.request(
            self._http,
            "DELETE",
            f"/session-storage/sessions/{session_id}",
            self._headers(),
            what=f"delete session {session_id}",
        )

    def _delete_session_on_close(self, session: Session) -> None:
        """Delete a session voxsync created, bounded: one attempt, ``CLOSE_DELETE_TIMEOUT``.

        A stream's ``close()`` calls it, and ``close()`` returns within its
        bound whatever the server does (a session left behind expires).
        """
        _rest.request(
            self._http,
            "DELETE",
            f"/session-storage/sessions/{session.id}",
            self._headers(),
            what=f"delete session {session.id}",
            timeout=_rest.CLOSE_DELETE_TIMEOUT,
            retries=0,
        )

    # ------------------------------------------------------------- streams
    def translation(
        self,
        source: Optional[str] = None,
        targets: Optional[Targets] = None,
        *,
        task: Optional[Mapping[str, Any]] = None,
        session: Optional[Session] = None,
        ws_url: Optional[str] = None,
        token: Optional[str] = None,
        ready_timeout: float = 30.0,
        **options: Any,
    ) -> TranslationSession:
        """A speech-to-speech translation stream (not connected yet; use ``with``).

        Parameters
        ----------
        source, targets
            Languages (see :func:`~voxsync.palabra.build_task`); or give ``task=``.
        task : dict or None
            A full task (from :func:`~voxsync.palabra.build_task`, edited at will).
        session : Session or None
            Use this session; voxsync never deletes it.
        ws_url, token : str or None
            Connect directly, without REST and without credentials.
        ready_timeout : float
            Seconds to wait for the pipeline to confirm the task (default 30).
        **options
            ``build_task`` options (``translate_partials``, ``silence_threshold``,
            ``input_sample_rate``, ...) and connection options (``queue_size``,
            ``overflow``, ``finish_timeout``, ``name``).
        """
        from voxsync.palabra.translation import TranslationSession

        return TranslationSession(
            self,
            source=source,
            targets=targets,
            task=task,
            session=session,
            ws_url=ws_url,
            token=token,
            ready_timeout=ready_timeout,
            **options,
        )

    def stt(
        self,
        language: str = "auto",
        translate: Union[str, Iterable[str], None] = None,
        **options: Any,
    ) -> SpeechToText:
        """A realtime speech-to-text stream (not connected yet; use ``with``).

        See :class:`voxsync.palabra.stt.SpeechToText` for the options
        (``sample_rate``, ``format``, ``enable_filler_filter``,
        ``silence_tail``, ``session=``, ``ws_url=`` + ``token=``, ...).
        """
        from voxsync.palabra.stt import SpeechToText

        return SpeechToText(self, language, translate, **options)

    def tts(
        self, language: str = "en", voice_id: str = "default_low", **options: Any
    ) -> TextToSpeech:
        """A realtime text-to-speech stream (not connected yet; use ``with``).

        See :class:`voxsync.palabra.tts.TextToSpeech` for the options
        (``output_format``, ``sample_rate``, ``speed``, ``session=``,
        ``ws_url=`` + ``token=``, ...).
        """
        from voxsync.palabra.tts import TextToSpeech

        return TextToSpeech(self, language, voice_id, **options)

    def translate_file(
        self,
        path: Any,
        *,
        source: Optional[str] = None,
        targets: Optional[Targets] = None,
        output: Any = None,
        on_transcript: Optional[Callable[[Any], Any]] = None,
        eos_timeout: float = 4.0,
        timeout: Optional[float] = None,
        **options: Any,
    ) -> List[Any]:
        """Translate an audio file, paced at real time; return the transcripts.

        Parameters
        ----------
        path : str or path-like
            Any format and rate :mod:`voxsync.audio` reads; it is converted
            to the task's input format.
        output : str, path-like or None
            Write the synthesized speech (24 kHz mono WAV) there.
        on_transcript : callable or None
            Called with every :class:`~voxsync.palabra.Transcript` (source
            and translations, partial and final) on the session's dispatcher
            thread, as they arrive.
        eos_timeout : float
            Seconds of trailing silence the server waits for before ending.
        timeout : float or None
            Bound on the wait for the tail after the file was sent
            (default ``eos_timeout + 30``).

        Returns
        -------
        list of Transcript
            The final transcripts and translations, in arrival order.
        """
        from voxsync.palabra.translation import translate_file

        return translate_file(
            self,
            path,
            source=source,
            targets=targets,
            output=output,
            on_transcript=on_transcript,
            eos_timeout=eos_timeout,
            timeout=timeout,
            **options,
        )
