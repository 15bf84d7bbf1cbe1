"""Recovery as data: what a provider went through while serving a request, and how long to wait.

Providers are loaded once and shared by every session, so they cannot hold a session's callback.
The session installs one for the tasks that run its requests instead (`reporting(callback)`, a
context variable: tasks created inside inherit it), and providers call `report(Incident(...))`
when a request fails, is retried, or moves to another provider. Outside any session (a benchmark,
the compatible endpoints) incidents are only logged.

`backoff(retry, policy, retry_after)` is the wait before a retry: the server's Retry-After when it
gave one (None when it asks for longer than the policy allows: do not retry), else a jittered
exponential back-off.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from voxloop.config import RetryConfig

log = logging.getLogger("voxloop.recovery")
Kind = Literal["error", "retry", "fallback", "recovered"]


@dataclass(frozen=True)
class Incident:
    kind: Kind  # error: a request failed; retry: it is tried again; fallback: another provider
    # takes over; recovered: a provider that was down answers again
    stage: str  # "stt", "llm" or "tts"
    provider: str
    category: str = ""  # errors.Category of the failure (error, retry, fallback)
    message: str = ""  # what failed, in words (never a key)
    attempt: int = 0  # retry: which retry this is, from 1
    delay_s: float = 0.0  # retry: the wait before it
    to_provider: str = ""  # fallback: the provider that takes over


Reporter = Callable[[Incident], None]
_reporter: ContextVar[Reporter | None] = ContextVar("voxloop_incident_reporter", default=None)


def report(incident: Incident) -> None:
    """Log the incident and pass it to the session whose request this is, if any."""
    i = incident
    if i.kind == "retry":
        log.warning(
            "%s %s: retry %d in %.2f s after %s (%s)",
            i.stage,
            i.provider,
            i.attempt,
            i.delay_s,
            i.category,
            i.message,
        )
    elif i.kind == "fallback":
        log.warning(
            "%s: %s failed (%s: %s); moving to %s", i.stage, i.provider, i.category, i.message, i.to_provider
        )
    elif i.kind == "recovered":
        log.info("%s: %s answers again", i.stage, i.provider)
    else:
        log.warning("%s %s failed (%s): %s", i.stage, i.provider, i.category, i.message)
    callback = _reporter.get()
    if callback is not None:
        try:
            callback(incident)
        except Exception:  # a broken listener must not break the request
            log.exception("an incident listener failed")


@contextlib.contextmanager
def reporting(callback: Reporter) -> Iterator[None]:
    """Incidents reported in this context (and in tasks created inside it) go to `callback`."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


def backoff(
    retry: int,
    policy: RetryConfig,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number `retry` (from 1); None: not worth retrying (the server's
    Retry-After is longer than `policy.retry_after_max_s`)."""
    if retry_after is not None:
        return max(0.0, retry_after) if retry_after <= policy.retry_after_max_s else None
    cap = min(policy.backoff_max_s, policy.backoff_s * 2 ** (retry - 1))
    return cap / 2 + rand() * cap / 2  # "equal jitter": never less than half, never in lockstep


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a response's `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None
