"""The TTS cache on a real Redis (Debian's redis-server on a free loopback port, no persistence):
lines stored by one voxloop process are hits for another; values carry a time to live; a value
that is not ours is a miss and is deleted; a Redis that is down, or goes away and comes back,
never stops the voice: it is said once, lines are synthesized meanwhile, and the cache is used
again once Redis answers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import FakeTTS
from voxloop.bench.local_redis import LocalRedis, free_port, redis_server_binary
from voxloop.providers.tts.cache import CachedTTS, LinePolicy
from voxloop.providers.tts.cache.redis_store import PREFIX, RedisStore

pytestmark = pytest.mark.skipif(redis_server_binary() is None, reason="redis-server is not installed")
LINE = "Is there anything else I can help you with?"


@pytest.fixture
def server() -> Iterator[LocalRedis]:
    with LocalRedis() as r:
        yield r


def worker(
    url: str, voice: FakeTTS | None = None, retry_after_s: float = 10.0, memory_bytes: int = 0
) -> CachedTTS:
    store = RedisStore(url, ttl_s=3600, retry_after_s=retry_after_s)
    policy = LinePolicy(("One moment.",), replies="all")
    return CachedTTS(voice or FakeTTS(), store, policy, memory_bytes=memory_bytes)


async def say(tts: CachedTTS, text: str) -> int:
    samples = sum([len(c) async for c in tts.synthesize(text)])
    await tts.flush()
    return samples


def test_two_workers_share_the_lines_one_of_them_synthesized(server: LocalRedis) -> None:
    first_voice, second_voice = FakeTTS(), FakeTTS()

    async def main() -> None:
        a, b = worker(server.url, first_voice), worker(server.url, second_voice)
        await a.load()  # prepares the fixed line in Redis
        await b.load()  # ... which b finds there
        assert first_voice.texts == ["One moment."] and second_voice.texts == []
        n = await say(a, LINE)
        assert await say(b, LINE) == n and second_voice.texts == []
        assert (a.stats.misses, b.stats.hits) == (1, 1)
        assert await say(b, "One moment.") > 0 and b.stats.hits == 2
        client = a.store._client  # type: ignore[attr-defined]
        keys = sorted(k.decode() for k in await client.keys(PREFIX + "*"))
        assert keys == sorted([PREFIX + a.key(LINE), PREFIX + a.key("One moment.")])
        assert 0 < await client.ttl(PREFIX + a.key(LINE)) <= 3600
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


def test_a_value_that_is_not_an_entry_is_a_miss_and_is_deleted(server: LocalRedis) -> None:
    voice = FakeTTS()

    async def main() -> None:
        tts = worker(server.url, voice)
        await tts.load()
        client = tts.store._client  # type: ignore[attr-defined]
        await client.set(PREFIX + tts.key(LINE), b"VXTC but not really")
        await say(tts, LINE)
        assert voice.texts.count(LINE) == 1 and tts.stats.misses == 1
        await say(tts, LINE)  # stored properly the first time round
        assert voice.texts.count(LINE) == 1 and tts.stats.hits == 1
        await tts.aclose()

    asyncio.run(main())


def test_no_redis_at_all_means_no_cache_said_once(caplog: pytest.LogCaptureFixture) -> None:
    voice = FakeTTS()

    async def main() -> None:
        tts = worker(f"redis://127.0.0.1:{free_port()}/0", voice, retry_after_s=0.0)
        await tts.load()  # the fixed line cannot be prepared: loading goes on
        for _ in range(5):
            assert await say(tts, LINE) > 0
        assert voice.texts.count(LINE) == 5 and tts.stats.misses == 5 and tts.stats.hits == 0
        await tts.aclose()

    with caplog.at_level(logging.WARNING, logger="voxloop.tts.cache"):
        asyncio.run(main())
    warnings = [r for r in caplog.records if "speaking without the cache" in r.getMessage()]
    assert len(warnings) == 1  # not once a line


def test_a_redis_that_goes_away_and_comes_back(server: LocalRedis, caplog: pytest.LogCaptureFixture) -> None:
    voice = FakeTTS()

    async def main() -> None:
        tts = worker(server.url, voice, retry_after_s=0.0)
        await tts.load()
        await say(tts, LINE)
        await say(tts, LINE)
        assert tts.stats.hits == 1
        server.stop()
        for _ in range(3):  # spoken by the voice, uncached, while Redis is away
            assert await say(tts, LINE) > 0
        assert tts.stats.hits == 1 and voice.texts.count(LINE) == 4
        server.start()  # same port; it kept nothing (no persistence)
        await say(tts, LINE)  # a miss, stored again
        await say(tts, LINE)
        assert tts.stats.hits == 2 and voice.texts.count(LINE) == 5
        await tts.aclose()

    with caplog.at_level(logging.INFO, logger="voxloop.tts.cache"):
        asyncio.run(main())
    text = caplog.text
    assert text.count("speaking without the cache") == 1 and text.count("answers again") == 1


def test_with_a_memory_front_the_fillers_stay_instant_while_redis_is_away(server: LocalRedis) -> None:
    voice = FakeTTS()

    async def main() -> None:
        tts = worker(server.url, voice, memory_bytes=10_000_000)
        await tts.load()
        await say(tts, LINE)
        server.stop()
        assert await say(tts, "One moment.") > 0 and await say(tts, LINE) > 0
        assert tts.stats.hits == 2 and voice.texts == ["One moment.", LINE]
        await tts.aclose()

    asyncio.run(main())


def test_a_down_redis_is_not_asked_again_until_its_retry_time(caplog: pytest.LogCaptureFixture) -> None:
    voice = FakeTTS()

    async def main() -> None:
        tts = worker(f"redis://127.0.0.1:{free_port()}/0", voice, retry_after_s=3600.0)
        store = tts.store
        assert isinstance(store, RedisStore)
        await tts.load()
        assert not store.available
        calls: list[str] = []
        real_get = store._client.get

        async def counted(key: str) -> object:
            calls.append(key)
            return await real_get(key)

        store._client.get = counted
        for _ in range(3):
            await say(tts, LINE)
        assert calls == [] and voice.texts.count(LINE) == 3
        await tts.aclose()

    asyncio.run(main())


def test_a_password_in_the_url_is_not_logged() -> None:
    store = RedisStore("redis://user:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in store.name and "user:***@127.0.0.1:1/0" in store.name
    asyncio.run(store.aclose())


def test_bench_tts_cache_on_redis(server: LocalRedis, tmp_path: Path) -> None:
    from voxloop.cli import main

    argv = ["-q", "bench", "tts-cache", "--backends", "redis", "--redis", server.url, "--lines", "8"]
    assert main([*argv, "--lookups", "40", "--concurrency", "1,4", "--out", str(tmp_path)]) == 0
    (run,) = json.loads((tmp_path / "tts_cache.json").read_text())["runs"]
    assert run["backend"].startswith("redis ") and run["hit_first_audio_ms_x4"]["n"] == 40
