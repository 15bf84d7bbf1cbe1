"""The four provider contracts: one small interface per kind.

Each contract is shaped so that a local model and a cloud streaming service fit it alike:

- VAD:  a per-session stream that scores fixed-size frames (Silero; a cloud STT may bring its own).
- STT:  a per-turn stream: push audio as it arrives, get partials through a callback, ask for the
        final transcript at the end of the turn (faster-whisper re-decoding a growing buffer;
        Deepgram's WebSocket with interim results and a Finalize message).
- LLM:  messages in, an async stream of text pieces out (llama.cpp; any OpenAI-compatible endpoint).
- TTS:  text in, an async stream of audio chunks out (hibari, Piper; Deepgram Aura's WebSocket).

Providers own their blocking work (in their own worker thread) and their per-session state lives
in the stream objects they hand out, so one loaded model serves many sessions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Samples = NDArray[np.float32]


@dataclass(frozen=True)
class Transcript:
    text: str
    is_final: bool
    audio_s: float = 0.0  # seconds of turn audio this transcript covers


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool
    interim_results: bool


class Provider(ABC):  # noqa: B024 - every hook is optional
    """Lifecycle shared by every provider: load (and warm up) once, close once."""

    name: str = "provider"

    async def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights and warm up. Idempotent."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release threads, sockets and memory."""


# -- VAD ---------------------------------------------------------------------------------------
class VADStream(ABC):
    @abstractmethod
    def __call__(self, frame: Samples) -> float:
        """Speech probability of one frame of `VAD.frame_samples` samples at `VAD.sample_rate`."""

    @abstractmethod
    def reset(self) -> None: ...


class VAD(Provider):
    sample_rate: int = 16000
    frame_samples: int = 512

    @abstractmethod
    def stream(self) -> VADStream: ...


# -- STT ---------------------------------------------------------------------------------------
PartialCallback = Callable[[Transcript], None]


class STTStream(ABC):
    """One user turn's recognition. Audio is mono float32 at `STT.sample_rate`."""

    @abstractmethod
    async def push(self, audio: Samples) -> None: ...

    def speech_paused(self) -> None:  # noqa: B027 - optional hint
        """The VAD heard the speech stop (the turn may be ending): a good moment to decode early."""

    def speech_resumed(self) -> None:  # noqa: B027 - optional hint
        """The speech went on after a pause."""

    def continues(self, text: str) -> None:  # noqa: B027 - optional hint
        """This turn goes on from `text` (the user's words just before it, when they went on after
        a pause that ended their last turn): context for recognising its first words."""

    @abstractmethod
    async def finalize(self) -> Transcript:
        """The final transcript of everything pushed; the stream is then empty for the next turn."""

    async def pause_transcript(self) -> Transcript | None:
        """After `speech_paused`: the transcript of the speech so far, which becomes the final one
        if the turn ends without more speech. None when the provider cannot tell early."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        ...


class STT(Provider):
    sample_rate: int = 16000
    capabilities = STTCapabilities(streaming=True, interim_results=True)

    @abstractmethod
    def stream(self, on_partial: PartialCallback | None = None) -> STTStream: ...

    async def transcribe(self, audio: Samples) -> Transcript:
        """Batch transcription of a whole clip (default: one stream, one push, finalize)."""
        s = self.stream()
        try:
            await s.push(audio)
            return await s.finalize()
        finally:
            await s.aclose()


# -- LLM ---------------------------------------------------------------------------------------
class LLM(Provider):
    @abstractmethod
    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Text pieces of the reply as they are generated. Closing the iterator stops generation."""

    async def prefill(self, messages: Sequence[Message]) -> None:  # noqa: B027 - optional hint
        """A hint: a prompt starting with these messages is likely next (the last user message
        may still grow). A local model can evaluate it ahead of time; a remote one ignores it."""


# -- TTS ---------------------------------------------------------------------------------------
class TTS(Provider):
    sample_rate: int = 24000

    @abstractmethod
    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        """Audio chunks (mono float32 at `sample_rate`) for `text`, the first as soon as possible."""
