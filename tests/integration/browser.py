"""A real browser as the page's user: Debian's Chromium, headless, driven by playwright, with its
fake microphone playing a WAV file (see ../shared/BROWSER.md for what was learnt about it).

Chromium starts playing the file when the page opens the microphone, and after the end repeats the
last 10 ms forever: `mic_wav` pads the speech with silence on both sides.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxloop.audio.wav import write_wav
from voxloop.providers.base import Samples

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"  # gitignored: screenshots a person can look at after a run
log = logging.getLogger("tests.browser")


def mic_wav(path: Path, speech: Samples, rate: int = 16000, lead_s: float = 0.5, tail_s: float = 1.5) -> Path:
    """A 16-bit WAV for Chromium's fake microphone: silence, the speech, silence."""
    pad = lambda s: np.zeros(int(s * rate), np.float32)  # noqa: E731
    return write_wav(path, np.concatenate([pad(lead_s), speech, pad(tail_s)]), rate)


def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to install it."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/setup.sh does)")
    return CHROMIUM


@asynccontextmanager
async def chromium_page(mic: Path, executable: Path, *, bypass_csp: bool = False) -> AsyncIterator[Any]:
    """A page in a fresh headless Chromium whose microphone plays `mic`. `bypass_csp` lets
    playwright's `wait_for_function` run (it evaluates strings, which the page's policy forbids)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(executable),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 760}, bypass_csp=bypass_csp)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.problems = problems
            yield page
        finally:
            await browser.close()


async def save_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Into the test's tmp dir, and a copy into artifacts/ for people to look at."""
    shot = tmp_path / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / shot.name).write_bytes(shot.read_bytes())
    except OSError as e:  # a read-only checkout: the tmp copy is enough
        log.warning("could not copy the screenshot to %s: %s", ARTIFACTS, e)
    return shot


async def stats(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => ({...window.voxloop.stats})")
    return result
