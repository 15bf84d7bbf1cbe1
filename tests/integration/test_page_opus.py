"""The page's codecs in a real browser (headless Chromium) against the real server, with fake
models: Opus both ways where WebCodecs can (AudioEncoder / AudioDecoder say they support it),
PCM16 where the browser has no WebCodecs. The bytes each way are logged beside PCM16's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import make_providers, tone
from fakes import FakeSTT
from live_server import live_server

from .browser import chromium, chromium_page, mic_wav, stats
from .conftest import Arun

pw = pytest.importorskip("playwright.async_api", reason="pip install playwright (the dev extra)")
expect = pw.expect
pytestmark = pytest.mark.browser
log = logging.getLogger("tests.browser")
SECOND = 24000  # voice samples a second (the page's player runs at 24 kHz)
CAN_OPUS = """async () => {
  const enc = typeof AudioEncoder !== "undefined" && (await AudioEncoder.isConfigSupported(
    {codec: "opus", sampleRate: 16000, numberOfChannels: 1, bitrate: 32000})).supported;
  const dec = typeof AudioDecoder !== "undefined" && (await AudioDecoder.isConfigSupported(
    {codec: "opus", sampleRate: 24000, numberOfChannels: 1})).supported;
  return [!!enc, !!dec];
}"""
NO_WEBCODECS = "delete window.AudioEncoder; delete window.AudioDecoder;"


async def converse(page: Any, url: str) -> dict[str, Any]:
    """Open the page, start, let the fake turn run until its reply has played; the page's stats."""
    await page.goto(url)
    await expect(page.locator("#status-text")).to_have_text("Ready", timeout=10_000)
    await page.click("#settings summary")
    await page.uncheck("#aec")  # the fake voice is a steady tone: keep noise suppression off it
    await page.click("#start")
    await expect(page.locator(".bubble.user .final")).to_have_text("turn on the lamp", timeout=15_000)
    await expect(page.locator(".timing")).to_contain_text("ms", timeout=15_000)  # played through
    assert await page.locator("#toast").is_hidden(), await page.locator("#toast").inner_text()  # no error
    return await stats(page)


def test_opus_where_webcodecs_can(arun: Arun[Any], tmp_path: Path) -> None:
    exe = chromium()
    mic = mic_wav(tmp_path / "mic.wav", tone(1.2), tail_s=6.0)

    async def main() -> None:
        providers = make_providers(stt=FakeSTT(["turn on the lamp"]))
        async with live_server(providers) as srv, chromium_page(mic, exe, bypass_csp=True) as page:
            await page.goto(srv.http_url + "/")
            can_encode, can_decode = await page.evaluate(CAN_OPUS)
            s = await converse(page, srv.http_url + "/")
            log.info("this Chromium: Opus encoder %s, decoder %s; page stats %s", can_encode, can_decode, s)
            assert s["micCodec"] == ("opus" if can_encode else "pcm16"), s  # as the server's `started` says
            assert s["voiceCodec"] == ("opus" if can_decode else "pcm16"), s
            assert s["receivedSamples"] >= SECOND, s  # "Sure, happy to help.": 4 words of 0.25 s
            assert s["playedSamples"] >= s["receivedSamples"] - SECOND * 0.05 and s["peak"] > 0.2, s
            mic_bytes_per_s = s["sentBytes"] / (s["sentFrames"] * 0.02)
            voice_bytes_per_s = s["receivedBytes"] / (s["receivedSamples"] / SECOND)
            log.info(
                "bytes/s: microphone %.0f (PCM16 at 16 kHz: 32000), voice %.0f (PCM16 at 24 kHz: 48000)",
                mic_bytes_per_s,
                voice_bytes_per_s,
            )
            if can_encode:
                assert mic_bytes_per_s < 32000 / 6, s
            if can_decode:
                assert voice_bytes_per_s < 48000 / 6, s
            assert not page.problems, page.problems

    arun(main())


def test_pcm16_without_webcodecs(arun: Arun[Any], tmp_path: Path) -> None:
    exe = chromium()
    mic = mic_wav(tmp_path / "mic.wav", tone(1.2), tail_s=6.0)

    async def main() -> None:
        providers = make_providers(stt=FakeSTT(["turn on the lamp"]))
        async with live_server(providers) as srv, chromium_page(mic, exe, bypass_csp=True) as page:
            await page.add_init_script(NO_WEBCODECS)
            s = await converse(page, srv.http_url + "/")
            assert (s["micCodec"], s["voiceCodec"]) == ("pcm16", "pcm16"), s
            assert s["sentBytes"] == s["sentFrames"] * 640, s  # 20 ms of 16 kHz PCM16 each
            assert s["receivedBytes"] == 2 * s["receivedSamples"] and s["peak"] > 0.2, s
            assert not page.problems, page.problems

    arun(main())
