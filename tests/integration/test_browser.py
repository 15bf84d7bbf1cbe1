"""The whole product as a person meets it: `voxloop serve`'s page in a real browser (Debian's
Chromium, headless), a recorded question played into its microphone, the real models answering.

The page runs as shipped (its content security policy on, echo cancellation on), so the waits use
the page's own elements. A screenshot is kept in the test's tmp dir and in artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from live_server import live_server
from voxloop.agent.providers import Providers

from .browser import chromium, chromium_page, mic_wav, save_screenshot, stats
from .conftest import LAMP, Arun, Corpus
from .helpers import words

pw = pytest.importorskip("playwright.async_api", reason="pip install playwright (the dev extra)")
expect = pw.expect
pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_a_person_speaks_to_the_page_sees_the_words_and_hears_the_reply(
    arun: Arun[Any], providers: Providers, corpus: Corpus, tmp_path: Path
) -> None:
    exe = chromium()
    mic = mic_wav(tmp_path / "question.wav", corpus.audio(LAMP), tail_s=2.0)

    async def main() -> None:
        async with live_server(providers) as srv, chromium_page(mic, exe) as page:
            await page.goto(srv.http_url + "/")
            await expect(page.locator("#status-text")).to_have_text("Ready", timeout=10_000)
            await page.click("#start")

            # the user's words, as the recogniser heard them (on a busy machine, through the page's
            # Opus microphone, tiny.en's faster decoding has heard "lamp" as "lab": the words
            # before it are what shows the transcript reached the page)
            user = page.locator(".bubble.user .final").first
            await expect(user).to_have_text(
                re.compile("turn on the living room", re.IGNORECASE), timeout=60_000
            )
            # the reply, shown as it is spoken, then the turn's latency bar once it has been played
            await expect(page.locator(".timing .bar")).to_be_visible(timeout=90_000)
            agent = await page.locator(".bubble.agent").first.inner_text()
            assert len(words(agent)) >= 2, agent
            timing = await page.locator(".timing").first.inner_text()
            assert re.search(r"\d+ ms from the end of your words", timing), timing

            # the reply's audio reached the speaker: all of it, and not silence
            s = await stats(page)
            assert s["outputRate"] > 0 and s["receivedSamples"] >= 0.5 * s["outputRate"], s
            assert s["playedSamples"] >= s["receivedSamples"] - s["outputRate"] * 0.05, s
            assert s["peak"] > 0.05, s
            assert s["turns"] == 1
            # Opus each way where this Chromium's WebCodecs can (test_page_opus.py checks which)
            assert s["micCodec"] in ("opus", "pcm16") and s["voiceCodec"] in ("opus", "pcm16"), s
            print(
                f"\npage codecs: microphone {s['micCodec']} {s['sentBytes'] / (s['sentFrames'] * 0.02):.0f} B/s, "
                f"voice {s['voiceCodec']} {s['receivedBytes'] / (s['receivedSamples'] / s['outputRate']):.0f} B/s"
            )
            await save_screenshot(page, tmp_path, "page-real-models")
            assert not page.problems, page.problems  # e.g. a content-security-policy violation

    arun(main())
