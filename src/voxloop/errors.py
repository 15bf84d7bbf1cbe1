"""Errors as data: every failure voxloop reports carries what to do next."""

from __future__ import annotations

from dataclasses import dataclass


class VoxloopError(Exception):
    """Base class for voxloop's own errors. `hint` tells the user what to do next."""

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
    """A provider failed. `retryable` says whether trying again may help."""

    def __init__(self, message: str, hint: str = "", *, retryable: bool = False) -> None:
        super().__init__(message, hint)
        self.retryable = retryable


@dataclass(frozen=True)
class ErrorEvent:
    """An error as the session reports it: a stable code and a human message. The session lives on."""

    code: str
    message: str
    stage: str = ""


class StageTimeout(VoxloopError):
    """A stage (the LLM, the voice) produced nothing within its deadline."""

    def __init__(self, stage: str, seconds: float) -> None:
        super().__init__(
            f"the {stage} produced nothing for {seconds:.1f} s; the turn was abandoned",
            "check that the model is loaded and the machine is not overloaded (see the log above)",
        )
        self.stage = stage
