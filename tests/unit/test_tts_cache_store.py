"""The TTS cache's keys, stored bytes and disk backend (providers/tts/cache): keys change with
everything that changes the audio and nothing else; entries survive a restart; the folder stays
within its bound, least recently used out; a cut-short or foreign file is a miss and is deleted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import run_virtual
from fakes import FakeTTS
from voxloop.config import AgentConfig, TTSCacheConfig, TTSConfig
from voxloop.providers.tts.cache import CachedTTS, DiskStore, Entry, open_store, with_cache
from voxloop.providers.tts.cache.disk import default_dir
from voxloop.providers.tts.cache.entry import CorruptEntry, decode, encode
from voxloop.providers.tts.cache.key import cache_key, voice_identity


def audio(seconds: float, freq: float = 220.0, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class Voice(FakeTTS):
    def __init__(self, name: str = "hibari", **config: object) -> None:
        super().__init__()
        self.name = name
        self.config = TTSConfig(provider=name, **config)  # type: ignore[arg-type]


def size_of(path: Path) -> int:
    return path.stat().st_size


# -- keys ------------------------------------------------------------------------------------------
def test_the_key_changes_with_what_changes_the_audio_and_not_with_whitespace() -> None:
    base = voice_identity(Voice())
    key = cache_key(base, "One moment.")
    assert key == cache_key(voice_identity(Voice()), "  One   moment. ")
    assert len(key) == 64 and "moment" not in key
    others = [
        cache_key(base, "One moment!"),
        cache_key(base, "One moment.", speed=1.25),
        cache_key(voice_identity(Voice("piper")), "One moment."),
        cache_key(voice_identity(Voice(voice="other")), "One moment."),
        cache_key(voice_identity(Voice(speed=1.1)), "One moment."),
        cache_key(voice_identity(Voice(loudness_dbfs=-16.0)), "One moment."),
    ]
    rate = Voice()
    rate.sample_rate = 22050
    others.append(cache_key(voice_identity(rate), "One moment."))
    assert len({key, *others}) == len(others) + 1


def test_only_the_settings_a_provider_uses_are_in_its_key() -> None:
    # Piper's prosody variation changes its audio; hibari has none, so it does not split its keys
    assert voice_identity(Voice(variation=0.0)) == voice_identity(Voice(variation=1.0))
    assert voice_identity(Voice("piper", variation=0.0)) != voice_identity(Voice("piper", variation=1.0))
    dg = TTSConfig(provider="deepgram")
    other = TTSConfig(provider="deepgram")
    other.deepgram.tts_model = "aura-2-other-en"
    a, b = Voice("deepgram"), Voice("deepgram")
    a.config, b.config = dg, other
    assert voice_identity(a) != voice_identity(b)


# -- entries ---------------------------------------------------------------------------------------
def test_an_entry_round_trips_as_16_bit_pcm() -> None:
    x = audio(0.5)
    back = decode(encode(Entry(x, 24000)))
    assert back.sample_rate == 24000 and len(back.audio) == len(x) and back.audio.dtype == np.float32
    assert np.max(np.abs(back.audio - x)) < 1.0 / 32767 + 1e-6


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) - 10],  # cut short
        lambda b: b[:12],  # shorter than a header
        lambda b: b"JUNK" + b[4:],  # not ours
        lambda b: b[:30] + bytes([b[30] ^ 0xFF]) + b[31:],  # a flipped byte in the audio
    ],
)
def test_a_damaged_entry_is_refused(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CorruptEntry):
        decode(damage(encode(Entry(audio(0.1), 24000))))


# -- the disk backend ------------------------------------------------------------------------------
def test_entries_survive_a_restart(tmp_path: Path) -> None:
    x = audio(0.3)

    async def main() -> None:
        first = DiskStore(tmp_path, 10_000_000)
        await first.open()
        assert await first.get("ab" * 32) is None
        assert await first.put("ab" * 32, Entry(x, 24000))
        await first.aclose()
        second = DiskStore(tmp_path, 10_000_000)  # a new process, the same folder
        await second.open()
        got = await second.get("ab" * 32)
        assert got is not None and got.sample_rate == 24000 and len(got.audio) == len(x)
        assert second._bytes == size_of(second.path("ab" * 32))
        await second.aclose()

    run_virtual(main())


def test_the_folder_stays_within_its_bound_least_recently_used_out(tmp_path: Path) -> None:
    one = len(encode(Entry(audio(0.5), 24000)))  # every entry here is this size
    keys = [f"{i:02x}" * 32 for i in range(4)]

    async def main() -> None:
        store = DiskStore(tmp_path, max_bytes=3 * one + one // 2)  # room for three
        await store.open()
        for i, key in enumerate(keys[:3]):
            assert await store.put(key, Entry(audio(0.5, 200.0 + i), 24000))
            os.utime(store.path(key), (1000.0 + i, 1000.0 + i))  # used in this order
        assert await store.get(keys[0]) is not None  # the oldest, now the most recently used
        assert await store.put(keys[3], Entry(audio(0.5), 24000))  # over the bound: evict
        on_disk = {k for k in keys if store.path(k).exists()}
        # down to 90% of the bound: the least recently used (keys[1]) went, the rest stay
        assert keys[1] not in on_disk and keys[0] in on_disk and keys[3] in on_disk
        assert sum(size_of(store.path(k)) for k in on_disk) <= 3 * one + one // 2
        assert store.evicted == 4 - len(on_disk)
        await store.aclose()

    run_virtual(main())


def test_a_folder_over_its_bound_is_trimmed_when_opened(tmp_path: Path) -> None:
    async def main() -> None:
        big = DiskStore(tmp_path, 10_000_000)
        await big.open()
        for i in range(5):
            await big.put(f"{i:02x}" * 32, Entry(audio(0.5), 24000))
        await big.aclose()
        small = DiskStore(tmp_path, max_bytes=2 * len(encode(Entry(audio(0.5), 24000))))
        await small.open()
        assert small.evicted == 4 and small._bytes <= small.max_bytes
        await small.aclose()

    run_virtual(main())


def test_a_corrupt_file_is_a_miss_and_is_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = "cd" * 32

    async def main() -> None:
        store = DiskStore(tmp_path, 10_000_000)
        await store.open()
        await store.put(key, Entry(audio(0.3), 24000))
        path = store.path(key)
        path.write_bytes(path.read_bytes()[:-100])  # a crash mid-write, without the rename's help
        with caplog.at_level("WARNING", logger="voxloop.tts.cache"):
            assert await store.get(key) is None
        assert not path.exists() and "corrupt" in caplog.text
        assert await store.put(key, Entry(audio(0.3), 24000))  # and it is stored again
        assert await store.get(key) is not None
        await store.aclose()

    run_virtual(main())


def test_a_half_written_temporary_file_is_never_read_and_a_stale_one_is_cleared(tmp_path: Path) -> None:
    key = "ef" * 32

    async def main() -> None:
        store = DiskStore(tmp_path, 10_000_000)
        await store.open()
        tmp = store.path(key).with_name(f".{key}.1.2.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(encode(Entry(audio(0.3), 24000))[:-50])  # a writer died before its rename
        assert await store.get(key) is None
        os.utime(tmp, (1.0, 1.0))  # long ago
        await store.aclose()
        again = DiskStore(tmp_path, 10_000_000)
        await again.open()  # the scan clears stale temporary files
        assert not tmp.exists() and again._bytes == 0
        await again.aclose()

    run_virtual(main())


def test_the_default_folder_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_dir() == tmp_path / "voxloop" / "tts"
    store = open_store(TTSCacheConfig(location="disk"))
    assert isinstance(store, DiskStore) and store.root == tmp_path / "voxloop" / "tts"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_dir() == Path.home() / ".cache" / "voxloop" / "tts"


def test_the_location_picks_the_backend(tmp_path: Path) -> None:
    assert open_store(TTSCacheConfig()) is None  # off unless asked for
    assert open_store(TTSCacheConfig(location="off")) is None
    folder = open_store(TTSCacheConfig(location=str(tmp_path / "c"), max_bytes=1234))
    assert isinstance(folder, DiskStore) and folder.max_bytes == 1234
    voice = FakeTTS()
    assert with_cache(voice, AgentConfig()) is voice
    cfg = AgentConfig()
    cfg.tts.cache = TTSCacheConfig(location=str(tmp_path), fixed_lines=("Hello, thanks for calling.",))
    wrapped = with_cache(voice, cfg)
    assert isinstance(wrapped, CachedTTS)
    assert wrapped.policy.fixed_lines == sorted(
        ["Give me a second.", "Hello, thanks for calling.", "One moment."]
    )


def test_a_folder_that_cannot_be_used_means_no_cache_not_no_voice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a folder")
    voice = FakeTTS()

    async def main() -> None:
        tts = CachedTTS(voice, DiskStore(blocker / "tts", 10_000_000))
        await tts.load()  # the folder cannot be made: the voice loads all the same
        for _ in range(2):
            assert [c async for c in tts.synthesize("Is there anything else?")]
        assert voice.texts == ["Is there anything else?"] * 2 and tts.stats.hits == 0
        await tts.aclose()

    with caplog.at_level("WARNING", logger="voxloop.tts.cache"):
        run_virtual(main())
    assert caplog.text.count("speaking without the cache") == 1


def test_failed_writes_are_logged_once_until_one_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "aa"  # where the entries of keys "aa..." go, taken by a file

    async def main() -> None:
        store = DiskStore(tmp_path, 10_000_000)
        await store.open()
        blocker.write_bytes(b"")
        for i in range(3):
            assert not await store.put(f"aa{i:02x}" + "0" * 60, Entry(audio(0.1), 24000))
        assert await store.put("ab" * 32, Entry(audio(0.1), 24000))  # another folder: it works
        assert not await store.put("aa" * 32, Entry(audio(0.1), 24000))  # failing again: said again
        await store.aclose()

    with caplog.at_level("WARNING", logger="voxloop.tts.cache"):
        run_virtual(main())
    assert caplog.text.count("could not write") == 2
