"""Palabra realtime STT against the emulator: real speech, finish, refusals, faults."""

from __future__ import annotations

import time
from typing import Any, Iterator, List

import numpy as np
import pytest
from speech import MAX_WER, TRANSCRIPTS, chunks, pcm16, sample, wer

from voxsync.emulators.engine import make_engine
from voxsync.emulators.palabra import PalabraEmulator, PalabraFaults
from voxsync.errors import (
    ConcurrencyLimitError,
    ConfigurationError,
    DisconnectedError,
    RemoteProtocolError,
)
from voxsync.palabra import AuthError, Palabra, Transcript


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with make_engine("pocketsphinx") as eng:
        yield eng


@pytest.fixture
def emu(engine: Any) -> Iterator[PalabraEmulator]:
    with PalabraEmulator(engine=engine) as e:
        yield e


@pytest.fixture
def palabra(emu: PalabraEmulator) -> Palabra:
    return Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url)


def trimmed(name: str) -> bytes:
    """A sample's speech with its trailing silence cut off (the last word ends the audio)."""
    samples = np.frombuffer(pcm16(name), dtype="<i2")
    loud = np.nonzero(np.abs(samples) > 500)[0]
    return bytes(samples[: loud[-1] + 160].tobytes())


def test_real_speech_with_translations_and_no_lost_tail(
    palabra: Palabra, emu: PalabraEmulator
) -> None:
    transcripts: List[Transcript] = []
    translations: List[Transcript] = []
    with palabra.stt(language="en", translate=["es", "fr"]) as stt:
        assert stt.input_format.sample_rate == 16000
        stt.on("transcript", transcripts.append)
        stt.on("translation", translations.append)
        for chunk in chunks(trimmed("quick_brown_fox.wav"), 3200):
            stt.send(chunk)
    # leaving the block streamed a silence tail and waited for the last final
    finals = [t for t in transcripts if t.is_final]
    assert len(finals) == 1, transcripts
    assert wer(TRANSCRIPTS["quick_brown_fox.wav"], finals[0].text) <= MAX_WER
    assert finals[0].is_eos and not finals[0].is_translation and finals[0].language == "en"
    assert any(not t.is_final for t in transcripts)
    assert {t.id for t in transcripts} == {finals[0].id}
    assert [t.language for t in translations] == ["es", "fr"]
    assert all(
        t.is_translation and t.source_language == "en" and t.id == finals[0].id
        for t in translations
    )
    assert translations[0].text == "[es] " + finals[0].text
    assert 0 <= finals[0].start < finals[0].end
    assert len(emu.sessions) == 0


def test_without_the_tail_the_last_segment_would_be_lost(palabra: Palabra) -> None:
    finals: List[Transcript] = []
    stt = palabra.stt(language="en", silence_tail=0)
    stt.on("transcript", lambda t: t.is_final and finals.append(t))
    with stt:
        for chunk in chunks(trimmed("meeting.wav"), 3200):
            stt.send(chunk)
    assert finals == []  # the vendor client's behaviour: closed before the final


def test_file_two_utterances_and_iteration(palabra: Palabra) -> None:
    stt = palabra.stt(language="en", sample_rate=24000)
    events: List[Any] = []
    with stt:
        it = stt.events()
        stt.send_file(sample("two_utterances.wav"), realtime=False)
    everything = list(it)
    events = [e for e in everything if isinstance(e, Transcript) and e.is_final]
    text = " ".join(e.text for e in events)
    assert len(events) == 2
    assert wer(TRANSCRIPTS["two_utterances.wav"], text) <= MAX_WER


def test_query_on_the_wire_and_auto_language(palabra: Palabra, emu: PalabraEmulator) -> None:
    stt = palabra.stt(
        translate="de", format="pcm_f32le", sample_rate=22050, enable_filler_filter=False
    )
    got: List[Any] = []
    stt.on("translation", got.append)
    with stt:
        stt.send_file(sample("yes.wav"), realtime=False)
    assert got and got[0].target_language == "de" and got[0].source_language == "en"


def test_401_and_409_and_bad_settings(palabra: Palabra, emu: PalabraEmulator) -> None:
    session = palabra.create_session()
    with pytest.raises(AuthError):
        Palabra().stt(ws_url=emu.ws_base, token="not-a-token").connect()
    first = palabra.stt(session=session)
    first.connect()
    try:
        with pytest.raises(ConcurrencyLimitError, match="already active for this identity") as info:
            palabra.stt(session=session).connect()
        assert info.value.status_code == 409
    finally:
        first.close()
    assert session.id in emu.sessions  # session= is never deleted by voxsync
    direct = Palabra(client_id="", client_secret="")
    deadline = time.monotonic() + 5
    while emu.asr.active(session.publisher) and time.monotonic() < deadline:
        time.sleep(0.02)
    with direct.stt(language="en", ws_url=emu.base_url, token=session.publisher) as stt:
        stt.send(b"\0\0" * 1600)
    with pytest.raises(ConfigurationError, match="format"):
        palabra.stt(format="opus")
    with pytest.raises(ConfigurationError, match="language code"):
        palabra.stt(language="english")
    with pytest.raises(ConfigurationError, match="unknown option"):
        palabra.stt(colour="red")


def test_malformed_frame_is_an_error_event_and_the_stream_goes_on(engine: Any) -> None:
    with PalabraEmulator(engine=engine, faults=PalabraFaults(malformed_after_chunks=2)) as emu:
        palabra = Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url)
        errors: List[Any] = []
        finals: List[Any] = []
        with palabra.stt(language="en") as stt:
            stt.on("error", errors.append)
            stt.on("transcript", lambda t: t.is_final and finals.append(t))
            for chunk in chunks(pcm16("yes.wav"), 3200):
                stt.send(chunk)
        assert isinstance(errors[0], RemoteProtocolError)
        assert [f.text for f in finals] == ["yes"]


@pytest.mark.parametrize(
    "fault", [PalabraFaults(drop_after_chunks=3), PalabraFaults(rate_limit_close=True)]
)
def test_dropped_stream_fails_finish_without_hanging(engine: Any, fault: PalabraFaults) -> None:
    with PalabraEmulator(engine=engine, faults=fault) as emu:
        palabra = Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url)
        stt = palabra.stt(language="en", finish_timeout=5)
        stt.connect()
        started = time.monotonic()
        with pytest.raises(DisconnectedError):
            for chunk in chunks(pcm16("meeting.wav"), 3200):
                stt.send(chunk)
                time.sleep(0.01)
            stt.finish()
        stt.close()
        assert time.monotonic() - started < 10
        with pytest.raises(DisconnectedError) as info:
            stt.wait(1)
        if fault.rate_limit_close:  # the close code is surfaced
            assert info.value.code == 1008


def test_stall_makes_finish_time_out(engine: Any) -> None:
    with PalabraEmulator(engine=engine, faults=PalabraFaults(stall_after_chunks=1)) as emu:
        palabra = Palabra(emu.client_id, emu.client_secret, api_url=emu.base_url)
        stt = palabra.stt(language="en")
        stt.connect()
        for chunk in chunks(pcm16("yes.wav"), 3200):
            stt.send(chunk)
        started = time.monotonic()
        # stalled: no partials ever arrive, so finish() ends after the quiet wait, no hang
        stt.finish(timeout=5)
        assert time.monotonic() - started < 5
