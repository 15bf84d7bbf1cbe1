"""The page in a real browser (headless Chromium) against the real server, with fake models: what
the page does is deterministic here, so these check its behaviour closely. The microphone is a WAV
of a tone, which the fake VAD hears as speech; the fake voice is a tone too.

test_browser.py does the same with the real models and real speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import LONG_REPLY, LONG_TEXT, make_providers, tone
from fakes import FakeLLM, FakeSTT
from live_server import live_server

from .browser import chromium, chromium_page, mic_wav, save_screenshot, stats
from .conftest import Arun

pw = pytest.importorskip("playwright.async_api", reason="pip install playwright (the dev extra)")
expect = pw.expect
pytestmark = pytest.mark.browser
SECOND = 24000  # voice samples a second


async def open_and_start(page: Any, url: str, *, push_to_talk: bool = False) -> None:
    await page.goto(url)
    await expect(page.locator("#status-text")).to_have_text("Ready", timeout=10_000)
    await page.click("#settings summary")
    await page.uncheck("#aec")  # the fake voice is a steady tone: keep noise suppression off it
    if push_to_talk:
        await page.click("text=Push to talk")
    await page.click("#start")
    await expect(page.locator("#end")).to_be_visible(timeout=10_000)


def test_open_mic_shows_the_words_plays_the_reply_and_interrupt_silences_it(
    arun: Arun[Any], tmp_path: Path
) -> None:
    exe = chromium()
    mic = mic_wav(tmp_path / "mic.wav", tone(1.2), tail_s=10.0)
    stt = FakeSTT(["turn on the lamp"], partial_every_s=0.3)
    providers = make_providers(stt=stt, llm=FakeLLM(default=LONG_REPLY))

    async def main() -> None:
        async with live_server(providers) as srv, chromium_page(mic, exe, bypass_csp=True) as page:
            await open_and_start(page, srv.http_url + "/")
            await expect(page.locator(".bubble.user .final")).to_have_text("turn on the lamp", timeout=15_000)
            agent = page.locator(".bubble.agent")
            await expect(agent).to_contain_text("One two three", timeout=10_000)
            await page.wait_for_function(f"window.voxloop.stats.playedSamples > {SECOND}")
            assert (await stats(page))["peak"] > 0.2  # the voice was played, not silence

            # Interrupt: the sound stops at once, and the page keeps what was heard
            await page.click("#interrupt")
            await page.wait_for_function("window.voxloop.stats.buffered === 0", timeout=500)
            played = (await stats(page))["playedSamples"]
            await expect(agent.locator(".cut")).to_have_text("interrupted", timeout=5_000)
            await expect(page.locator(".timing")).to_contain_text("ms", timeout=5_000)
            assert (await stats(page))["playedSamples"] == played  # nothing played after the cut
            heard = (await agent.inner_text()).replace("interrupted", "").split()
            assert 2 <= len(heard) < len(LONG_TEXT.split())
            assert heard == LONG_TEXT.split()[: len(heard)]
            # the server counted what the page said it played: about the same number of words
            assert abs(len(heard) - played / SECOND / 0.25) <= 1.5
            await save_screenshot(page, tmp_path, "page-fakes-interrupted")
            assert not page.problems, page.problems

    arun(main())


def test_push_to_talk_hears_only_while_the_button_is_held(arun: Arun[Any], tmp_path: Path) -> None:
    exe = chromium()
    mic = mic_wav(tmp_path / "mic.wav", tone(8.0), tail_s=3.0)  # the microphone never stops
    stt = FakeSTT(["hello there"], partial_every_s=0.3)

    async def main() -> None:
        async with (
            live_server(make_providers(stt=stt)) as srv,
            chromium_page(mic, exe, bypass_csp=True) as page,
        ):
            await open_and_start(page, srv.http_url + "/", push_to_talk=True)
            await expect(page.locator("#talk")).to_be_visible()
            # 1.5 s of the tone have gone out as silence: nothing was heard
            await page.wait_for_function("window.voxloop.stats.sentFrames > 75", timeout=10_000)
            assert await page.locator(".turn").count() == 0
            await page.hover("#talk")
            await page.mouse.down()
            await expect(page.locator(".bubble.user .partial")).to_have_text("hello there", timeout=5_000)
            await page.mouse.up()  # release: the turn ends though the tone goes on
            await expect(page.locator(".bubble.user .final")).to_have_text("hello there", timeout=5_000)
            await expect(page.locator(".bubble.agent")).to_have_text("Sure, happy to help.", timeout=10_000)
            await expect(page.locator(".timing")).to_contain_text("ms", timeout=10_000)
            assert await page.locator(".turn").count() == 1
            # the release sent end_turn: decided at once, not after the 500 ms end silence
            endpoint_ms = await page.evaluate("window.voxloop.stats.endpointMs")
            assert endpoint_ms is not None and endpoint_ms < 300, endpoint_ms
            await save_screenshot(page, tmp_path, "page-fakes-push-to-talk")
            assert not page.problems, page.problems

    arun(main())
