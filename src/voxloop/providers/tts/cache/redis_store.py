"""The shared backend: Redis (`--tts-cache redis://host:port/db`), through redis-py's asyncio client.

Each line is one key, `voxloop:tts:<hash>`, holding an `entry` blob, written with a time to live
(`ttl_s`, 30 days by default) so that the cache cannot grow without end on a Redis that has no
`maxmemory`; bounding it in bytes is Redis's own job (`maxmemory` with `allkeys-lru`, see the
README). Several voxloop workers share one Redis, so a line synthesized by one is a hit for all.

A Redis that is down, slow or refuses us must never stop the agent speaking: every call has a
short deadline, and after a failure the store is "down" and not asked for `retry_after_s`: lines
are synthesized as if there were no cache. It says so once when it goes down and once when it is
back, not on every line.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from voxloop.providers._imports import require
from voxloop.providers.tts.cache.entry import CorruptEntry, Entry, decode, encode

log = logging.getLogger("voxloop.tts.cache")
PREFIX = "voxloop:tts:"


class RedisStore:
    def __init__(
        self, url: str, ttl_s: int = 30 * 24 * 3600, timeout_s: float = 0.5, retry_after_s: float = 10.0
    ) -> None:
        aioredis = require("redis.asyncio", "ops")
        retry = require("redis.asyncio.retry", "ops")
        backoff = require("redis.backoff", "ops")
        self.url, self.ttl_s, self.retry_after_s = url, ttl_s, retry_after_s
        self.name = f"redis {_without_password(url)}"
        self._errors: tuple[type[BaseException], ...] = (
            require("redis.exceptions", "ops").RedisError,
            OSError,
            TimeoutError,
        )
        self._client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=retry.Retry(backoff.NoBackoff(), 0),  # a failure counts at once; no piling up
        )
        self._down_until = 0.0  # monotonic time before which the store is not asked
        self._down = False

    async def open(self) -> None:
        """Checks the server once (PING); a Redis that is down only means no cache for now."""
        try:
            await self._client.ping()
        except self._errors as e:
            self._failed("ping", e)
        else:
            log.info("tts cache: %s is up", self.name)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    async def get(self, key: str) -> Entry | None:
        if not self.available:
            return None
        try:
            blob = await self._client.get(PREFIX + key)
        except self._errors as e:
            self._failed("read", e)
            return None
        self._up()
        if blob is None:
            return None
        try:
            return decode(blob)
        except CorruptEntry as e:
            log.warning("tts cache: the value at %s%s… is corrupt (%s); deleted", PREFIX, key[:12], e)
            try:
                await self._client.delete(PREFIX + key)
            except self._errors as err:
                self._failed("delete", err)
            return None

    async def put(self, key: str, entry: Entry) -> bool:
        if not self.available:
            return False
        try:
            await self._client.set(PREFIX + key, encode(entry), ex=self.ttl_s)
        except self._errors as e:
            self._failed("write", e)
            return False
        self._up()
        return True

    def _failed(self, what: str, error: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_after_s
        if not self._down:
            self._down = True
            log.warning(
                "tts cache: %s failed a %s (%s: %s); speaking without the cache, trying it again "
                "every %.0f s (is redis-server running there?)",
                self.name,
                what,
                type(error).__name__,
                error,
                self.retry_after_s,
            )

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.info("tts cache: %s answers again; lines come from it again", self.name)

    async def aclose(self) -> None:
        with contextlib.suppress(*self._errors):
            await self._client.aclose()


def _without_password(url: str) -> str:
    """The URL as it may be logged: a password in it is replaced by ***."""
    head, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{host}" if ":" in creds else f"{head}{sep}***@{host}"
