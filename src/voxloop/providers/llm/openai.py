"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server, voxloop serve)
through the official `openai` client, streamed.

Every wait has a deadline (`OpenAIConfig`): the connection, the first words of the reply, and the
gap between two pieces; nothing hangs. The client's own hidden retries are off (max_retries=0):
this provider retries itself, visibly (each failure and retry is `report`ed, so the session counts
them and says a filler): a failure before the first words, if its category can pass (5xx, 429,
a dropped connection, a deadline), is tried again at most `retry.max_retries` times, after the
server's Retry-After (bounded) or a jittered exponential back-off. A reply that fails after its
first words is not retried (they have been said): it ends with the error. A stream that ends
without a finish reason was cut off, and counts as a dropped connection.

Hedging: no answer within `hedge_after_s` (1 s), the same request goes again on another
connection and races the first (`providers/hedge.py`): the first to speak serves, the other is
cancelled. A stalled connection costs about a second. A server that has answered (its headers
came) but has no words yet is busy, not stalled: the second request waits until
`hedge_after_answer_s` (3 s) so as not to add to its load; a slow server is never failed for
being slow (`first_token_timeout_s` stays the last resort). `counters` says how often (hedge,
hedge_won, hedge_deferred).

An endpoint that cannot be reached (refused, no such host, no connection within
`connect_timeout_s`, or reset before any answer) is `unreachable`: in a fallback chain with a
member behind it (`has_fallback`) it is tried once more at once (a stale pooled connection) and
then given up on, so the chain's next member answers without the back-offs.

The key is never in a message: errors name the endpoint's host and the status, and the server's
own message with any key in it replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from voxloop.config import LLMConfig
from voxloop.errors import ProviderError, classify, classify_status, redact
from voxloop.providers._imports import require
from voxloop.providers.base import LLM, Message, Sampling, ToolCall, Usage
from voxloop.providers.hedge import hedged
from voxloop.providers.llm.openai_tools import ToolCallDeltas, wire_message
from voxloop.providers.recovery import Incident, backoff, report, retry_after

log = logging.getLogger("voxloop.llm")
OPENAI_URL = "https://api.openai.com/v1"


class OpenAILLM(LLM):
    name = "openai"
    native_tools = True  # `tools` in the request, `tool_calls` deltas in the reply

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.config = config or LLMConfig()
        self.settings = self.config.openai
        self.base_url = (self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip(
            "/"
        )
        self._key = self.settings.api_key or os.environ.get("OPENAI_API_KEY", "")
        parts = urlsplit(self.base_url)
        self.where = f"{parts.hostname or self.base_url}{f':{parts.port}' if parts.port else ''}"
        self._client: Any = None
        self._reachable = False
        self.counters: Counter[str] = Counter()  # hedge, hedge_won, unreachable

    # -- lifecycle ---------------------------------------------------------------------------------
    async def load(self) -> None:
        """Make the client and check the endpoint answers (GET /models): a missing or refused key
        and an unreachable endpoint fail here, in words."""
        if self._client is None:
            openai = require("openai", "cloud")
            if not self._key and self.base_url == OPENAI_URL:
                raise ProviderError(
                    "no OpenAI API key",
                    "set OPENAI_API_KEY, or point --openai-base-url at a compatible server",
                    category="auth",
                    provider=self.name,
                )
            s = self.settings
            read_s = max(s.first_token_timeout_s, s.idle_timeout_s)  # a backstop: ours are per wait
            timeout = openai.Timeout(
                connect=s.connect_timeout_s, read=read_s, write=read_s, pool=s.connect_timeout_s
            )
            self._client = openai.AsyncOpenAI(
                api_key=self._key or "none", base_url=self.base_url, max_retries=0, timeout=timeout
            )
        if self._reachable:
            return
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s + self.settings.first_token_timeout_s):
                await self._client.models.list()
        except Exception as e:
            err = self._error(e, "GET /models")
            if err.category in ("auth", "connectivity", "timeout"):
                raise err from None
            log.info("llm openai: %s (the chat endpoint may still work)", err.message)
        self._reachable = True
        log.info("llm openai: %s at %s", self.settings.model, self.where)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- streaming ---------------------------------------------------------------------------------
    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return cast(AsyncGenerator[str, None], self._pieces(messages, Sampling(), None))

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        return cast(AsyncGenerator[str, None], self._pieces(messages, sampling, usage))

    def stream_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> AsyncGenerator[str | ToolCall, None]:
        return self._pieces(messages, Sampling(), None, tools)

    async def _pieces(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        usage: Usage | None,
        tools: Sequence[dict[str, Any]] = (),
    ) -> AsyncGenerator[str | ToolCall, None]:
        if self._client is None:
            raise RuntimeError("OpenAILLM.load() must run before stream()")
        policy = self.settings.retry
        retries = unreachable = 0
        while True:
            said = False
            try:
                async with contextlib.aclosing(self._request(messages, sampling, usage, tools)) as pieces:
                    async for piece in pieces:
                        said = True
                        yield piece
                return
            except ProviderError as e:
                report(Incident("error", "llm", self.name, e.category, e.message))
                e.reported = True
                wait = None
                unreachable = unreachable + 1 if e.unreachable else 0
                if not said and e.retryable and retries < policy.max_retries:
                    wait = backoff(retries + 1, policy, e.retry_after)
                if e.unreachable and self.has_fallback:  # the chain's next member serves
                    self.counters["unreachable"] += 1
                    wait = 0.0 if unreachable == 1 and wait is not None else None
                if wait is None:
                    raise
                retries += 1
                report(Incident("retry", "llm", self.name, e.category, e.message, retries, round(wait, 3)))
                await asyncio.sleep(wait)

    def _request(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        usage: Usage | None,
        tools: Sequence[dict[str, Any]] = (),
    ) -> AsyncGenerator[str | ToolCall, None]:
        """One request, hedged after `hedge_after_s` without an answer (`hedge_after_answer_s`
        without words once it answered)."""
        answered: list[bool] = []
        first = self._attempt(messages, sampling, usage, tools, answered)
        s = self.settings
        if s.hedge_after_s <= 0:
            return first

        def patience() -> float:
            if not answered:
                return 0.0
            self.counters["hedge_deferred"] += 1
            return max(0.0, s.hedge_after_answer_s - s.hedge_after_s)

        return hedged(
            first,
            lambda: self._attempt(messages, sampling, usage, tools),
            s.hedge_after_s,
            self._hedging,
            self._hedge_won,
            patience,
        )

    def _hedging(self) -> None:
        self.counters["hedge"] += 1
        log.info("llm openai: no first words yet; a second request races the first")

    def _hedge_won(self, i: int) -> None:
        self.counters["hedge_won"] += i

    async def _attempt(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        usage: Usage | None,
        tools: Sequence[dict[str, Any]] = (),
        answered: list[bool] | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """One request: its pieces (and, with `tools`, the calls once the reply ends), or a
        ProviderError (with its category) for any failure; `answered` gets True once the
        server's response has begun."""
        s, cfg = self.settings, self.config
        body: dict[str, Any] = {
            "model": s.model,
            "messages": [wire_message(m) for m in messages],
            "stream": True,
            "max_tokens": sampling.max_tokens or cfg.max_tokens,
            "temperature": cfg.temperature if sampling.temperature is None else sampling.temperature,
        }
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if tools:
            body["tools"] = list(tools)
        calls = ToolCallDeltas()
        if usage is not None:
            body["stream_options"] = {"include_usage": True}
            usage.prompt_tokens = sum(len(m.content) for m in messages) // 4 + 4 * len(messages)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.first_token_timeout_s  # the first words, then each next piece
        stream: Any = None
        finish, said = "", False
        try:
            async with asyncio.timeout_at(deadline):
                stream = await self._client.chat.completions.create(**body)
            if answered is not None:
                answered.append(True)
            chunks = aiter(stream)
            while True:
                # a deadline per wait, never across a yield: the consumer may step this generator
                # from a different task each time (agent/watchdog.py)
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    break
                if getattr(chunk, "usage", None) is not None and usage is not None:
                    usage.prompt_tokens = chunk.usage.prompt_tokens or usage.prompt_tokens
                    usage.completion_tokens = chunk.usage.completion_tokens or usage.completion_tokens
                for choice in chunk.choices or ():
                    finish = choice.finish_reason or finish
                    if choice.delta is not None and calls.add(getattr(choice.delta, "tool_calls", None)):
                        said = True  # the reply has begun (a call is never spoken)
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        said = True
                        if usage is not None:
                            usage.completion_tokens += 1
                        yield text
                if said:
                    deadline = loop.time() + s.idle_timeout_s
        except TimeoutError:
            what = "next piece" if said else "first words"
            raise ProviderError(
                f"openai at {self.where}: no {what} of the reply within the deadline",
                category="timeout",
                provider=self.name,
            ) from None
        except ProviderError:
            raise
        except Exception as e:
            err = self._error(e, "chat completion")
            err.unreachable = err.unreachable or (stream is None and err.category == "connectivity")
            raise err from None
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.close()
        if not finish:
            raise ProviderError(
                f"openai at {self.where}: the stream ended before the reply did (no finish reason)",
                category="connectivity",
                provider=self.name,
            )
        if usage is not None:
            usage.finish_reason = "length" if finish == "length" else "stop"
        for call in calls.done():
            yield call

    def _error(self, e: BaseException, what: str) -> ProviderError:
        """Any failure of the client as a ProviderError: its category, the status and Retry-After
        of an HTTP error, the server's message without the key."""
        status = getattr(e, "status_code", None)
        response = getattr(e, "response", None)
        headers = getattr(response, "headers", None) or {}
        category = classify_status(status) if isinstance(status, int) else classify(e)
        detail = redact(str(getattr(e, "message", "") or e or type(e).__name__), self._key)[:300]
        head = f"HTTP {status}" if isinstance(status, int) else type(e).__name__
        return ProviderError(
            f"openai at {self.where}: {what}: {head}: {detail}",
            _HINTS.get(category, ""),
            category=category,
            retry_after=retry_after(headers) if isinstance(status, int) else None,
            status=status if isinstance(status, int) else None,
            provider=self.name,
            unreachable=_no_connection(e),
        )


def _no_connection(e: BaseException) -> bool:
    """No connection could be made: refused, no such host, or none within the deadline (the
    client's ConnectError / ConnectTimeout, anywhere in the chain of causes)."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            return False
        names = {c.__name__ for c in type(seen).__mro__}
        if names & {"ConnectError", "ConnectTimeout", "ConnectionRefusedError", "gaierror"}:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_HINTS = {
    "auth": "check OPENAI_API_KEY (or the key the server at --openai-base-url expects)",
    "bad_request": "check the model name (--llm-model) and that the endpoint speaks OpenAI's chat API",
    "connectivity": "check --openai-base-url / OPENAI_BASE_URL and the network",
}
