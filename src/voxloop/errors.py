"""Errors as data: every failure voxloop reports carries what to do next, and a `category`.

Categories (`Category`): auth (a key is missing or refused), rate_limit (429), connectivity (no
connection, a dropped or truncated stream), server (5xx, a broken reply), timeout (a deadline
passed), bad_request (any other 4xx: the request itself is wrong). `classify` turns an HTTP
status or any exception (the openai client's, httpx's, websockets', OS errors) into one;
`retryable(category)` says whether trying the same request again can help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["auth", "rate_limit", "connectivity", "server", "timeout", "bad_request"]
CATEGORIES: tuple[Category, ...] = ("auth", "rate_limit", "connectivity", "server", "timeout", "bad_request")
RETRYABLE: frozenset[Category] = frozenset({"rate_limit", "connectivity", "server", "timeout"})


class VoxloopError(Exception):
    """Base class for voxloop's own errors. `hint` tells the user what to do next."""

    category: Category = "server"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message if not hint else f"{message}\n  -> {hint}")
        self.message = message
        self.hint = hint


class MissingExtra(VoxloopError):
    """A provider's optional dependency is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this provider needs the Python module '{module}', which is not installed",
            f'install it with: pip install "voxloop[{extra}]"',
        )
        self.extra = extra


class ModelMissing(VoxloopError):
    """A model's weights are not on this machine."""


class UnknownProvider(VoxloopError):
    """A provider name that is not in the registry."""


class AudioFormatError(VoxloopError):
    """Audio in a format voxloop cannot take (wrong rate, channels, width, malformed frames)."""


class ProviderError(VoxloopError):
    """A provider failed. `retryable` says whether trying again may help (by default: whether the
    category is one that can pass); `retry_after` is the server's Retry-After in seconds, if any;
    `status` the HTTP status, if any; `reported`: the provider has already reported it as an
    error incident (providers/recovery.py), so a wrapper need not; `unreachable`: the endpoint
    could not be reached at all (refused, no such host, no connection within its deadline, reset
    before any answer), so a fallback chain need not wait for retries. The message never holds a key."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        retryable: bool | None = None,
        category: Category = "server",
        retry_after: float | None = None,
        status: int | None = None,
        provider: str = "",
        unreachable: bool = False,
    ) -> None:
        super().__init__(message, hint)
        self.category = category
        self.retryable = category in RETRYABLE if retryable is None else retryable
        self.retry_after = retry_after
        self.status = status
        self.provider = provider
        self.reported = False
        self.unreachable = unreachable


def classify_status(status: int) -> Category:
    """The category of an HTTP status that is an error (>= 400)."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    return "bad_request"


def classify(exc: BaseException) -> Category:
    """The category of any failure: voxloop's own errors carry theirs; HTTP errors by their
    status (an attribute `status_code`, or `response.status_code`); timeouts and connection
    failures by their type (the client libraries are not imported here: matched by name)."""
    if isinstance(exc, VoxloopError):
        return exc.category
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and status >= 400:
        return classify_status(status)
    names = [c.__name__ for c in type(exc).__mro__]
    if isinstance(exc, TimeoutError) or any("Timeout" in n for n in names):
        return "timeout"
    connection = ("ConnectionClosed", "APIConnectionError", "NetworkError", "ProtocolError", "InvalidURI")
    if isinstance(exc, ConnectionError | OSError | EOFError) or any(n in connection for n in names):
        return "connectivity"
    return "server"


def retryable(category: Category) -> bool:
    return category in RETRYABLE


@dataclass(frozen=True)
class ErrorEvent:
    """An error as the session reports it: a stable code and a human message. The session lives on."""

    code: str
    message: str
    stage: str = ""
    provider: str = ""
    category: str = ""


class StageTimeout(VoxloopError):
    """A stage (the LLM, the voice) produced nothing within its deadline."""

    category: Category = "timeout"

    def __init__(self, stage: str, seconds: float) -> None:
        super().__init__(
            f"the {stage} produced nothing for {seconds:.1f} s; the turn was abandoned",
            "check that the model is loaded and the machine is not overloaded (see the log above)",
        )
        self.stage = stage


def redact(text: str, *secrets: str) -> str:
    """`text` with every secret (an API key) in it replaced by "***" (keys never reach a log,
    an event or an error message)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
