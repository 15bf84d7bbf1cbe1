"""The embedded backend: one file per line under a cache folder, bounded in bytes, oldest-used out.

Layout: `<root>/<first two hex digits of the key>/<key>.pcm`, each file an `entry` blob. A file
is written under a temporary name in the same folder and renamed into place, so a reader never
sees a half-written entry; one cut short anyway (a crash, a full disk, a hand edit) fails its
length or checksum test, counts as a miss and is deleted. A hit touches the file's modification
time, which is what eviction orders by: when the folder grows past `max_bytes`, the least
recently used files go until it is at 90% of it (the folder is re-read then, so several
processes sharing it are counted together). All file work runs in the store's own threads,
never on the event loop. Nothing but the hash of a line is in a file name; no text is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from voxloop.providers.tts.cache.entry import CorruptEntry, Entry, decode, encode

log = logging.getLogger("voxloop.tts.cache")
T = TypeVar("T")
SUFFIX = ".pcm"
STALE_TMP_S = 3600.0  # a temporary file this old was left by a crashed writer


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "voxloop" / "tts"


class DiskStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root, self.max_bytes = Path(root), max_bytes
        self.name = f"disk {self.root}"
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voxloop-tts-cache")
        self._lock = threading.Lock()
        self._bytes = 0  # this folder's size as last counted, plus what was written since
        self.evicted = 0  # files deleted to keep within max_bytes (and corrupt ones)
        self.usable = True  # False: the folder cannot be made or read; no cache, said once
        self._write_failing = False  # a write failed: the next failures are not logged again

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._bytes = sum(size for _, size, _ in self._scan())
                over = self._bytes > self.max_bytes
        except OSError as e:
            self.usable = False
            log.warning(
                "tts cache: cannot use the folder %s (%s); speaking without the cache "
                "(give --tts-cache a writable folder, or off)",
                self.root,
                e,
            )
            return
        if over:
            self._evict()
        log.info(
            "tts cache: %s holds %.1f MB (at most %.0f MB)",
            self.root,
            self._bytes / 1e6,
            self.max_bytes / 1e6,
        )

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{SUFFIX}"

    async def get(self, key: str) -> Entry | None:
        return await self._run(self._get, key)

    def _get(self, key: str) -> Entry | None:
        if not self.usable:
            return None
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("tts cache: could not read %s (%s); speaking it anew", path, e)
            return None
        try:
            entry = decode(blob)
        except CorruptEntry as e:
            log.warning("tts cache: %s is corrupt (%s); deleted, it will be synthesized again", path, e)
            if self._unlink(path):
                with self._lock:
                    self._bytes = max(0, self._bytes - len(blob))
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: last to be evicted
        return entry

    async def put(self, key: str, entry: Entry) -> bool:
        return await self._run(self._put, key, entry)

    def _put(self, key: str, entry: Entry) -> bool:
        if not self.usable:
            return False
        blob = encode(entry)
        path = self.path(key)
        tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not self._write_failing:  # a full disk would say so on every line otherwise
                log.warning(
                    "tts cache: could not write %s (%s); lines stay uncached until a write works", path, e
                )
            self._write_failing = True
            return False
        self._write_failing = False
        with self._lock:
            self._bytes += len(blob)
            over = self._bytes > self.max_bytes
        if over:
            self._evict()
        return True

    def _scan(self) -> list[tuple[float, int, Path]]:
        """(last used, size, path) of every entry; stale temporary files are deleted on the way."""
        found: list[tuple[float, int, Path]] = []
        now = time.time()
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for f in os.scandir(sub.path):
                with contextlib.suppress(OSError):
                    st = f.stat(follow_symlinks=False)
                    if f.name.endswith(SUFFIX):
                        found.append((st.st_mtime, st.st_size, Path(f.path)))
                    elif f.name.endswith(".tmp") and now - st.st_mtime > STALE_TMP_S:
                        os.unlink(f.path)
        return found

    def _evict(self) -> None:
        with self._lock:
            files = sorted(self._scan())  # oldest use first
            total = sum(size for _, size, _ in files)
            target = int(self.max_bytes * 0.9)
            for _, size, path in files:
                if total <= target:
                    break
                if self._unlink(path):
                    total -= size
            self._bytes = total

    def _unlink(self, path: Path) -> bool:
        try:
            os.unlink(path)
        except OSError:
            return False
        self.evicted += 1
        return True

    async def aclose(self) -> None:
        await asyncio.to_thread(self._pool.shutdown)  # lets a write under way finish
