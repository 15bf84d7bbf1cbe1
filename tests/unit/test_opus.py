"""Raw 20 ms Opus packets (audio/opus.py): round trips, packet lengths read from the TOC byte,
malformed packets refused without harming the decoder, and the voice sink's Opus frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxloop.audio import opus
from voxloop.audio.pcm import resample
from voxloop.errors import AudioFormatError
from voxloop.server.sink import SocketSink
from voxloop.server.wire_audio import OpusIn, OpusOut

pytestmark = pytest.mark.skipif(not opus.available(), reason="PyAV without libopus: pip install av")


def speechlike(seconds: float, rate: int) -> np.ndarray:
    """A voiced sound with a moving pitch and syllable-like loudness (Opus's voip mode is tuned for
    speech; a steady tone is a poor test of it)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.2 * voiced * envelope).astype(np.float32)


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_round_trip_keeps_the_sound(rate: int):
    x = speechlike(1.0, rate)
    y = opus.roundtrip(x, rate, 24000)
    assert len(y) == len(x)
    core = slice(rate // 10, -rate // 10)
    corr = [np.corrcoef(x[core], np.roll(y, lag)[core])[0, 1] for lag in range(-rate // 400, rate // 400 + 1)]
    assert corr[rate // 400] == max(corr) > 0.75  # lined up (the codec's delay removed), and alike
    assert abs(np.std(y[core]) / np.std(x[core]) - 1) < 0.2


def test_packets_are_20_ms_and_the_rest_waits_for_flush():
    enc = opus.OpusEncoder(16000, 16000)
    packets = enc.encode(speechlike(0.05, 16000))  # 50 ms: two whole packets, 10 ms held
    assert len(packets) == 2 and enc.pending == 160
    assert all(opus.packet_duration_s(p) == 0.02 for p in packets)
    last = enc.flush()
    assert len(last) == 1 and enc.pending == 0 and enc.flush() == []
    enc.encode(np.zeros(100, np.float32))
    enc.drop()
    assert enc.pending == 0


def test_bitrate_shapes_the_size():
    x = speechlike(2.0, 16000)
    sizes = {}
    for bitrate in (12000, 24000):
        enc = opus.OpusEncoder(16000, bitrate)
        sizes[bitrate] = sum(map(len, enc.encode(x))) / 2.0  # bytes per second
    assert sizes[12000] < sizes[24000] < 24000 / 8 * 1.3
    assert sizes[24000] < 32000 / 8  # under an eighth of PCM16 at 16 kHz


def test_unsupported_rate_is_a_clear_error():
    with pytest.raises(AudioFormatError, match="Opus cannot encode at 44100 Hz"):
        opus.OpusEncoder(44100)


@pytest.mark.parametrize(
    ("packet", "seconds"),
    [
        (bytes([0x08]) + b"x", 0.02),  # SILK NB 20 ms, one frame
        (bytes([0x79]) + b"xy", 0.04),  # hybrid 20 ms, two equal frames (code 1)
        (bytes([0xFA]) + b"x", 0.04),  # CELT 20 ms, two frames of different sizes (code 2)
        (bytes([0xFB, 0x03]) + b"x", 0.06),  # CELT 20 ms, three frames (code 3)
        (bytes([0x80]), 0.0025),  # CELT 2.5 ms
    ],
)
def test_packet_duration_from_the_toc(packet: bytes, seconds: float):
    assert opus.packet_duration_s(packet) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"", "empty"),
        (bytes([0xFB]), "frame count byte is missing"),
        (bytes([0xFB, 0x00]), "no frames"),
        (bytes([0xFB, 0x3F]), "over Opus's 120 ms"),  # 63 frames of 20 ms
        (bytes([0x79]) + b"xyz", "odd total length"),
    ],
)
def test_malformed_packets(packet: bytes, why: str):
    with pytest.raises(AudioFormatError, match=why):
        opus.packet_duration_s(packet)


def test_the_decoder_refuses_a_bad_packet_and_goes_on():
    enc, dec = opus.OpusEncoder(16000), opus.OpusDecoder()
    packets = enc.encode(speechlike(0.2, 16000))
    first = dec.decode(packets[0])
    assert len(first) == 960  # 20 ms at 48 kHz
    bad = bytes([0xFB, 0x82, 0xFF])  # VBR, two frames, a length byte that needs a second one
    with pytest.raises(AudioFormatError, match="could not be decoded"):
        dec.decode(bad)
    rest = np.concatenate([dec.decode(p) for p in packets[1:]])
    assert len(rest) == 960 * (len(packets) - 1) and np.std(rest) > 0.05


def test_opus_in_says_what_to_send():
    mic = OpusIn()
    with pytest.raises(AudioFormatError, match="send one whole Opus packet"):
        mic.decode(b"")
    assert mic.seconds(b"") == 0.02 and mic.seconds(bytes([0x08, 1])) == 0.02


def test_the_sink_sends_whole_packets_and_flushes_the_end():
    async def main() -> None:
        sent: list[bytes | dict[str, object]] = []
        sink = SocketSink(24000, sent.append, encoder=OpusOut(24000))
        sink.play(speechlike(0.05, 24000))  # 2 packets now, 10 ms held
        assert len(sent) == 2 and sink.queued_samples() == 960
        sink.report(960)
        waiting = asyncio.ensure_future(sink.drained())  # the utterance is over: the rest goes
        await asyncio.sleep(0)
        assert len(sent) == 3 and sink.queued_samples() == 1440  # padded to a whole packet
        sink.report(1440)
        await waiting
        sink.play(speechlike(0.03, 24000))  # 1 packet, 10 ms held ...
        sink.stop()  # ... and forgotten: nothing more is sent for it
        stop = sent[-1]
        assert isinstance(stop, dict) and stop["type"] == "audio_stop" and stop["position"] == 1920
        assert len([m for m in sent if isinstance(m, bytes)]) == 4
        decoded = np.concatenate([opus.OpusDecoder().decode(m) for m in sent if isinstance(m, bytes)])
        assert len(decoded) == 4 * 960

    asyncio.run(main())


def test_resample_helper_is_exact_length():  # the bench's round trip keeps clip lengths
    x = speechlike(1.234, 16000)
    assert len(opus.roundtrip(x, 16000, 16000)) == len(x)
    assert len(resample(x, 16000, 48000)) == 3 * len(x)


def test_near_silence_stays_quiet():  # 16-bit samples of 1 or 2 are not full scale
    enc, dec = opus.OpusEncoder(16000), opus.OpusDecoder()
    x = np.full(1600, 1 / 32768, np.float32)
    y = np.concatenate([dec.decode(p) for p in enc.encode(x)])
    assert np.abs(y).max() < 0.01
