"""CachedTTS (providers/tts/cache/cached.py) over a fake voice and a real disk store: a hit is the
stored audio at once without the voice; a miss streams from the voice and is stored only when the
voice finished the line; the policy keeps personal data and one-off replies out; fixed lines are
ready from the load; a fallback chain's fallback voice is not stored under the chain's key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest

from conftest import run_virtual
from fakes import FakeTTS
from voxloop.config import FallbackConfig
from voxloop.providers.base import Samples
from voxloop.providers.fallback import FallbackTTS
from voxloop.providers.tts.cache import CachedTTS, DiskStore, LinePolicy, looks_personal, subscribe

LINE = "Is there anything else I can help you with?"


class Voice(FakeTTS):
    """A fake voice that can fail before its first chunk ("start") or after it ("mid")."""

    def __init__(self, fail: str = "", **kw: float) -> None:
        super().__init__(**kw)
        self.fail = fail

    async def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        if self.fail == "start":
            raise ConnectionError("the voice cannot be reached")
        async for chunk in super().synthesize(text):
            yield chunk
            if self.fail == "mid":
                raise ConnectionError("the voice went away mid-line")

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        return self.synthesize(text)


def cached(tmp: Path, voice: FakeTTS | None = None, **policy: object) -> CachedTTS:
    fixed = policy.pop("fixed", ("One moment.",))
    return CachedTTS(voice or Voice(), DiskStore(tmp, 10_000_000), LinePolicy(fixed, **policy))  # type: ignore[arg-type]


async def say(tts: CachedTTS, text: str) -> Samples:
    chunks = [c async for c in tts.synthesize(text)]
    await tts.flush()  # the write of a miss is a task of the cache's own
    return np.concatenate(chunks)


def test_a_fixed_line_is_ready_from_the_load_and_then_comes_without_the_voice(tmp_path: Path) -> None:
    voice = Voice()

    async def main() -> None:
        tts = cached(tmp_path, voice)
        await tts.load()
        assert voice.texts == ["One moment."] and tts.stats.counts["prewarmed"] == 1
        audio = await say(tts, "One moment.")
        assert voice.texts == ["One moment."]  # not synthesized again
        assert tts.stats.hits == 1 and tts.stats.misses == 0
        assert np.max(np.abs(audio - voice.tone_for("One moment."))) < 1e-4
        await tts.aclose()
        again = cached(tmp_path, voice)  # a restart: the line is on disk already
        await again.load()
        assert voice.texts == ["One moment."]
        await again.aclose()

    run_virtual(main())


def test_a_hit_is_one_chunk_of_the_whole_line_a_miss_streams_chunk_by_chunk(tmp_path: Path) -> None:
    voice = Voice(chunk_s=0.1)

    async def main() -> None:
        tts = cached(tmp_path, voice, replies="all")
        await tts.load()
        miss = [c async for c in tts.synthesize(LINE)]
        await tts.flush()
        hit = [c async for c in tts.synthesize(LINE)]
        assert len(miss) > 1 and len(hit) == 1
        assert len(hit[0]) == sum(len(c) for c in miss)
        assert (tts.stats.misses, tts.stats.hits, tts.stats.counts["stored"]) == (1, 1, 1)
        assert voice.texts.count(LINE) == 1
        await tts.aclose()

    run_virtual(main())


def test_a_line_cut_short_by_a_barge_in_or_a_failure_is_not_stored(tmp_path: Path) -> None:
    async def main() -> None:
        tts = cached(tmp_path, Voice(chunk_s=0.1), replies="all")
        await tts.load()
        async with aclosing(tts.synthesize(LINE)) as chunks:
            async for _ in chunks:
                break  # the caller spoke over the agent: the reply closes the stream
        await tts.flush()
        assert tts.stats.counts["stored"] == 0
        failing = cached(tmp_path, Voice(fail="mid"), replies="all")
        with pytest.raises(ConnectionError):
            await say(failing, LINE)
        assert failing.stats.counts["stored"] == 0
        await say(tts, LINE)  # said whole: now it is stored
        assert tts.stats.counts["stored"] == 1
        await tts.aclose()
        await failing.aclose()

    run_virtual(main())


def test_replies_are_stored_the_second_time_they_are_said(tmp_path: Path) -> None:
    voice = Voice()

    async def main() -> None:
        tts = cached(tmp_path, voice)  # replies="repeated", the default
        await tts.load()
        for _ in range(3):
            await say(tts, LINE)
        assert voice.texts.count(LINE) == 2  # heard once, stored the second time, a hit the third
        assert (tts.stats.misses, tts.stats.hits, tts.stats.counts["stored"]) == (2, 1, 1)
        await say(tts, "A line said once.")
        assert tts.stats.counts["stored"] == 1
        await tts.aclose()

    run_virtual(main())


def test_replies_off_caches_only_the_fixed_lines(tmp_path: Path) -> None:
    voice = Voice()

    async def main() -> None:
        tts = cached(tmp_path, voice, replies="off")
        await tts.load()
        for _ in range(3):
            await say(tts, LINE)
        await say(tts, "One  moment.")
        assert voice.texts.count(LINE) == 3 and tts.stats.counts["bypass"] == 3
        assert tts.stats.hits == 1 and tts.stats.counts["stored"] == 0
        await tts.aclose()

    run_virtual(main())


@pytest.mark.parametrize(
    "line",
    [
        "Your callback number is 415 555 0100.",
        "I have you at jane.doe@example.com.",
        "That is four one five, five five five, zero one.",
        "Your card ending 4242 is on file.",
        "I have you down as bob at example dot com.",  # found by voxloop.redact (no digit, no @)
        "You were born on March third nineteen eighty.",
    ],
)
def test_a_reply_that_may_hold_personal_data_is_never_looked_up_or_stored(tmp_path: Path, line: str) -> None:
    assert looks_personal(line)

    async def main() -> None:
        tts = cached(tmp_path, replies="all")
        await tts.load()
        await say(tts, line)
        await say(tts, line)
        assert tts.stats.counts["bypass"] == 2 and tts.stats.hits + tts.stats.misses == 0
        await tts.aclose()

    run_virtual(main())
    assert len(list(tmp_path.rglob("*.pcm"))) == 1  # only the fixed line is on disk


def test_ordinary_lines_are_not_taken_for_personal_data() -> None:
    for line in ("One moment.", LINE, "I can help with one or two things.", "Sure, let me check."):
        assert not looks_personal(line)


def test_the_personal_data_test_is_a_hook(tmp_path: Path) -> None:
    async def main() -> None:
        tts = cached(tmp_path, replies="all", personal=lambda text: "Jane" in text)
        await tts.load()
        await say(tts, "Thanks, Jane.")
        await say(tts, "Thanks, Jane.")
        assert tts.stats.counts["bypass"] == 2
        await tts.aclose()

    run_virtual(main())


def test_listeners_see_each_hit_and_miss(tmp_path: Path) -> None:
    seen: list[str] = []
    unsubscribe = subscribe(seen.append)

    async def main() -> None:
        tts = cached(tmp_path, replies="all")
        await tts.load()
        await say(tts, LINE)
        await say(tts, LINE)
        await tts.aclose()

    try:
        run_virtual(main())
    finally:
        unsubscribe()
    assert [r for r in seen if r in ("hit", "miss")] == ["miss", "hit"]


def test_a_fallback_chains_fallback_voice_is_not_stored_under_the_chains_key(tmp_path: Path) -> None:
    primary, local = Voice(fail="start"), Voice(freq=330.0)
    primary.name, local.name = "deepgram", "hibari"

    async def main() -> None:
        chain = FallbackTTS([primary, local], FallbackConfig(cooldown_s=60.0))
        tts = cached(tmp_path, chain, replies="all", fixed=())
        await tts.load()
        assert tts.name == "deepgram,hibari" and tts.sample_rate == 24000
        await say(tts, LINE)  # the primary cannot be reached: the local voice speaks it
        await say(tts, LINE)  # ... again: it is not kept as the chain's own voice
        assert local.texts == [LINE, LINE] and tts.stats.counts["stored"] == 0
        assert tts.stats.misses == 2
        await tts.aclose()

    run_virtual(main())


def test_a_voice_with_one_pace_still_refuses_another_at_once(tmp_path: Path) -> None:
    tts = cached(tmp_path, FakeTTS())
    with pytest.raises(ValueError, match="one speed"):
        tts.synthesize_with(LINE, 1.5)


def test_hits_and_misses_reach_the_prometheus_counter(tmp_path: Path) -> None:
    registry = pytest.importorskip("voxloop.metrics.registry", reason="needs prometheus_client (ops extra)")
    before = registry.tts_cache_counts()

    async def main() -> None:
        tts = cached(tmp_path, replies="all")
        await tts.load()  # the fixed line is prepared: not a lookup
        for line in (LINE, LINE, "One moment.", "Call 415 555 0100."):  # the last: bypassed
            await say(tts, line)
        await tts.aclose()

    run_virtual(main())
    after = registry.tts_cache_counts()
    assert (after["hit"] - before["hit"], after["miss"] - before["miss"]) == (2, 1)
    text = registry.Metrics().exposition().decode()
    assert f'voxloop_tts_cache_requests_total{{result="hit"}} {float(after["hit"])}' in text


def test_in_a_conversation_the_filler_comes_from_the_cache(tmp_path: Path) -> None:
    from conftest import conversation
    from fakes import FakeLLM, FakeSTT, FakeVAD
    from voxloop.agent import events as ev
    from voxloop.agent.providers import Providers
    from voxloop.config import AgentConfig, TTSCacheConfig
    from voxloop.providers.tts.cache import with_cache

    voice = FakeTTS()
    cfg = AgentConfig()
    cfg.tts.cache = TTSCacheConfig(location=str(tmp_path))
    slow = FakeLLM({"hello": ("Hi", " there", ".")}, first_delay=4.0)  # a filler after 2.5 s
    providers = Providers(FakeVAD(), FakeSTT(["hello", "hello"]), slow, with_cache(voice, cfg))

    async def main() -> None:
        async with conversation(providers, cfg) as c:
            await c.turn(1.0)
            await c.turn(1.0)
            assert [e.text for e in c.of(ev.AgentSpeech)] == ["One moment.", "Hi there."] * 2
            tts = c.providers.tts
            assert isinstance(tts, CachedTTS)
            # prepared at load, then two hits; the reply: a miss, then a miss that stores it
            assert voice.texts == ["Give me a second.", "One moment.", "Hi there.", "Hi there."]
            assert (tts.stats.hits, tts.stats.misses, tts.stats.counts["stored"]) == (2, 2, 1)

    run_virtual(main())


def test_the_memory_front_serves_its_lines_without_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        tts = CachedTTS(Voice(), DiskStore(tmp_path, 10_000_000), LinePolicy(("One moment.",)), 10_000_000)
        await tts.load()
        reads: list[str] = []
        real_get = tts.store.get

        async def counted(key: str) -> object:
            reads.append(key)
            return await real_get(key)

        tts.store.get = counted  # type: ignore[method-assign]
        first = await say(tts, "One moment.")
        first[:] = 0.0  # a consumer that writes into its audio changes nothing kept
        second = await say(tts, "One moment.")
        assert reads == [] and tts.stats.hits == 2 and np.any(second != 0.0)
        await tts.aclose()

    run_virtual(main())


def test_the_memory_front_is_bounded_least_recently_used_out() -> None:
    from voxloop.providers.tts.cache.entry import Entry
    from voxloop.providers.tts.cache.memory import MemoryFront

    one = np.zeros(1000, np.float32)  # 4000 bytes
    front = MemoryFront(max_bytes=16_000)
    for key in "abcd":
        front.put(key, Entry(one, 24000))
    assert front.get("a") is not None  # now the most recently used
    front.put("e", Entry(one, 24000))
    assert front.get("b") is None and front.get("a") is not None and len(front) == 4
    assert front.bytes == 16_000
    front.put("big", Entry(np.zeros(1001, np.float32), 24000))  # over a quarter of the bound: not kept
    assert front.get("big") is None


def test_preparing_the_fixed_lines_does_not_hold_the_start_up_for_long(tmp_path: Path) -> None:
    from voxloop.providers.tts.cache.cached import PREPARE_S

    async def main() -> None:
        slow = Voice(delay=8.0)  # each line 8 s to its first audio: a cloud voice struggling
        tts = cached(tmp_path, slow, fixed=("One moment.", "Give me a second."))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await tts.load()
        assert loop.time() - t0 == pytest.approx(PREPARE_S)
        assert tts.stats.counts["prewarmed"] == 1  # the first was ready, the second was not
        await tts.aclose()

    run_virtual(main())
