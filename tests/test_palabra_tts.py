"""Palabra realtime TTS: the seed's examples, synchronous, against the emulator."""

from __future__ import annotations

import io
import time
from typing import Any, Iterator, List

import numpy as np
import pytest
import soundfile as sf

from voxsync.emulators.engine import make_engine
from voxsync.emulators.palabra import PalabraEmulator
from voxsync.emulators.palabra.synth import synthesizer_available
from voxsync.emulators.palabra.tts import mp3_available
from voxsync.errors import LocalProtocolError
from voxsync.palabra import AuthError, Palabra, ServerError, TtsChunk

pytestmark = pytest.mark.skipif(
    not synthesizer_available(), reason="pip install 'voxsync[emulators]' (eSpeak NG)"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with make_engine("scripted", transcripts=["unused"]) as eng:
        yield eng


@pytest.fixture
def emu(engine: Any) -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine=engine) as e:
        e.tts.realtime = False
        yield e


@pytest.fixture
def palabra(emu: PalabraEmulator) -> Palabra:
    return Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url)


def speechlike(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2")
    return float(np.abs(samples).max()) if samples.size else 0.0


def test_seed_streaming_send_text_then_iterate_until_last_chunk(
    palabra: Palabra, emu: PalabraEmulator
) -> None:
    chunks: List[TtsChunk] = []
    with palabra.tts(language="en", voice_id="default_low") as tts:
        tts.send_text("The sun was setting over the mountains,")
        tts.send_text(" casting long golden shadows.", eos=True)
        for chunk in tts:  # TtsChunk: audio, generation_id, last_chunk, audio_len
            chunks.append(chunk)
            if chunk.last_chunk:
                break
        tts.cancel()  # stop current synthesis, session stays open
    assert len(emu.sessions) == 0  # the REST session voxsync created is deleted
    assert chunks[-1].last_chunk and all(not c.last_chunk for c in chunks[:-1])
    assert len({c.generation_id for c in chunks}) == 1
    pcm = b"".join(c.audio for c in chunks)
    assert len(pcm) / 48000 > 1.5 and speechlike(pcm) > 3000
    assert all(c.audio_format.sample_rate == 24000 for c in chunks)
    texts = [m["text"] for _, m in emu.tts.received if m.get("type") == "text"]
    assert texts == ["The sun was setting over the mountains,", " casting long golden shadows."]
    init = emu.tts.received[0][1]
    assert init["type"] == "init" and init["voice_options"] == {"voice_id": "default_low"}


def test_seed_synthesize_returns_pcm(palabra: Palabra) -> None:
    with palabra.tts(language="en", voice_id="default_low") as tts:
        pcm = tts.synthesize("Curious minds think alike.")
        again = tts.synthesize("Second sentence here.", speed=1.0)
    assert isinstance(pcm, bytes) and len(pcm) % 2 == 0
    assert 0.8 < len(pcm) / 48000 < 5 and speechlike(pcm) > 3000
    assert again and again != pcm


def test_synthesize_wav_at_16k_is_a_complete_file(palabra: Palabra) -> None:
    with palabra.tts(language="es", output_format="wav", sample_rate=16000) as tts:
        assert tts.output_format.sample_rate == 16000
        data = tts.synthesize("Hola a todos.")
        pcm_events: List[TtsChunk] = []
        tts.on("audio", pcm_events.append)
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 16000 and len(audio) > 8000
    # the events' pcm is the same audio without the header
    assert b"".join(c.pcm for c in pcm_events) in (b"", audio.tobytes())


@pytest.mark.skipif(not mp3_available(), reason="libsndfile without MP3")
def test_synthesize_mp3(palabra: Palabra) -> None:
    with palabra.tts(output_format="mp3") as tts:
        data = tts.synthesize("Hello there.")
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 24000 and len(audio) > 0.5 * rate


def test_too_long_text_raises_before_sending(palabra: Palabra, emu: PalabraEmulator) -> None:
    with palabra.tts() as tts:
        with pytest.raises(ValueError, match="at most 256"):
            tts.send_text("x" * 257, eos=True)
        with pytest.raises(ValueError, match="at most 256"):
            tts.synthesize("y" * 300)
    assert not [m for _, m in emu.tts.received if m.get("type") == "text"]


def test_cancel_mid_generation_then_the_socket_still_works(
    emu: PalabraEmulator, palabra: Palabra
) -> None:
    emu.tts.realtime = True
    with palabra.tts() as tts:
        tts.send_text(
            "This sentence is long enough to take a few seconds to speak aloud, surely.", eos=True
        )
        it = iter(tts)
        first = next(it)
        tts.cancel()
        rest = [first]
        for chunk in it:
            rest.append(chunk)
            if chunk.last_chunk:
                break
        assert rest[-1].generation_id == first.generation_id
        assert sum(len(c.audio) for c in rest) / 48000 < 3.0
        pcm = tts.synthesize("Still here.")
        assert speechlike(pcm) > 3000


def test_speak_stream_pieces_within_limit_and_50_per_second(
    palabra: Palabra, emu: PalabraEmulator
) -> None:
    sentences = [f"Item number {i} is ready, and the next one follows." for i in range(70)]
    text = " ".join(sentences) + " And then" + " a very long clause without any end" * 10
    tokens = [text[i : i + 5] for i in range(0, len(text), 5)]  # an LLM-like token stream
    errors: List[Any] = []
    with palabra.tts() as tts:
        tts.on("error", errors.append)
        started = time.monotonic()
        sent = tts.speak_stream(iter(tokens))
        tts.finish(timeout=60)
    frames = [(t, m) for t, m in emu.tts.received if m.get("type") == "text"]
    assert len(frames) == sent > 70
    assert all(len(m["text"]) <= 256 for _, m in frames)
    times = [t for t, _ in frames]
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 50
    assert times[-1] - started >= (sent - 50) / 50 * 0.95  # really spread out
    assert not errors, errors  # no RATE_LIMIT_EXCEEDED, no VALIDATION_ERROR
    assert [m["text"] for _, m in frames[:2]] == sentences[:2]  # one sentence per message
    joined = " ".join(m["text"] for _, m in frames)
    assert joined.split() == text.split()
    assert frames[-1][1]["is_eos"] is True
    assert sum(1 for _, m in frames if m["is_eos"]) == 71
    assert emu.tts.generations == 71


def test_server_errors_are_events_and_the_stream_goes_on(
    palabra: Palabra, emu: PalabraEmulator
) -> None:
    errors: List[Any] = []
    with palabra.tts(
        language="en", text_limit=300
    ) as tts:  # a client allowing more than the server
        tts.on("error", errors.append)
        tts.send_text("z" * 280, eos=True)
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.02)
        tts.cancel()
        assert tts.synthesize("Fine.")
    assert isinstance(errors[0], ServerError) and errors[0].code == "VALIDATION_ERROR"


def test_connection_modes_and_auth(palabra: Palabra, emu: PalabraEmulator) -> None:
    session = palabra.create_session()
    with palabra.tts(session=session) as tts:
        assert tts.synthesize("One.")
    assert session.id in emu.sessions  # session=: never deleted by voxsync
    direct = Palabra(client_id="", client_secret="")
    with direct.tts(ws_url=session.ws_tts_url, token=session.publisher) as tts:
        assert tts.synthesize("Two.")
    with pytest.raises(AuthError):
        direct.tts(ws_url=session.ws_tts_url, token="wrong").connect()
    with pytest.raises(AuthError, match="PALABRA_CLIENT_ID"):
        direct.tts().connect()


def test_tts_takes_text_not_audio(palabra: Palabra) -> None:
    with palabra.tts() as tts:
        assert tts.input_format is None
        with pytest.raises(LocalProtocolError):
            tts.send(b"\0\0")
