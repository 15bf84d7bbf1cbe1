"""Deepgram Aura-2 over REST (`POST /v1/speak`, the audio streamed as it comes), the fallback
and hedge path of providers/tts/deepgram.py; and the wire's small pieces both paths share."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from voxloop.config import DeepgramConfig
from voxloop.errors import ProviderError
from voxloop.providers._imports import require
from voxloop.providers.base import Samples
from voxloop.providers.deepgram_net import Endpoint, as_error, status_error

if TYPE_CHECKING:
    import httpx


def rest_client(dg: DeepgramConfig) -> httpx.AsyncClient:
    """A client with the provider's deadlines (no proxy settings from the environment)."""
    httpx = require("httpx", "cloud")
    timeout = httpx.Timeout(
        connect=dg.connect_timeout_s,
        read=dg.first_byte_timeout_s,
        write=dg.send_timeout_s,
        pool=dg.connect_timeout_s,
    )
    return httpx.AsyncClient(timeout=timeout, trust_env=False)


def rest_params(model: str, sample_rate: int) -> list[tuple[str, str]]:
    return [
        ("model", model),
        ("encoding", "linear16"),
        ("sample_rate", str(sample_rate)),
        ("container", "none"),
    ]


async def rest_speech(
    http: httpx.AsyncClient, url: str, endpoint: Endpoint, text: str, on_first_audio: Callable[[], None]
) -> AsyncGenerator[Samples, None]:
    """`text` spoken over REST; a failure is a ProviderError (its key never in the message)."""
    headers = {**endpoint.headers(), "Content-Type": "application/json"}
    first = True
    try:
        async with http.stream("POST", url, json={"text": text}, headers=headers) as r:
            if r.status_code != 200:
                body = await r.aread()
                raise status_error("tts", r.status_code, r.headers, body, endpoint.key, "speech")
            pcm = Pcm()
            async for data in r.aiter_raw():
                if len(samples := pcm(data)):
                    if first:
                        on_first_audio()
                        first = False
                    yield samples
    except ProviderError:
        raise
    except Exception as e:  # httpx's timeouts and transport errors, as data
        err = as_error("tts", e, endpoint.key, "speech over REST")
        err.unreachable = type(e).__name__ in ("ConnectError", "ConnectTimeout")
        raise err from None


class Pcm:
    """linear16 bytes -> float32 samples, an odd byte kept for the next message."""

    def __init__(self) -> None:
        self._carry = b""

    def __call__(self, data: bytes) -> Samples:
        data = self._carry + data
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return (np.frombuffer(data[:whole], "<i2").astype(np.float32) / 32768.0).astype(np.float32)


def message_kind(message: str) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(message)
    except ValueError:
        return "invalid", {}
    return (str(body.get("type", "")), body) if isinstance(body, dict) else ("invalid", {})
