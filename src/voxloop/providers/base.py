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

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Samples = NDArray[np.float32]


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float = 1.0


@dataclass(frozen=True)
class Segment:
    """A stretch of the transcript as the recogniser cut it (Whisper's segments)."""

    text: str
    start: float  # seconds from the start of the audio
    end: float
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True)
class Transcript:
    text: str
    is_final: bool
    audio_s: float = 0.0  # seconds of turn audio this transcript covers
    words: tuple[Word, ...] = ()  # with timings, when the recogniser gives them (else empty)
    segments: tuple[Segment, ...] = ()  # likewise
    # the last turn's final text, when this turn heard its end again (`STTStream.rehear`): `text`
    # holds those words (perhaps recognised better) and this turn's, and replaces them
    revises: str = ""


@dataclass(frozen=True)
class BatchOptions:
    """How to transcribe a whole recording (`STT.transcribe_batch`)."""

    context: str = ""  # words said before it, or a spelling guide: context for its first words
    timings: bool = False  # word and segment timings, where the recogniser can give them
    temperature: float = 0.0  # 0: the recogniser's own choice; above: sample at this temperature


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool: `arguments` is its JSON object as text (OpenAI's wire form)."""

    name: str
    arguments: str = "{}"
    id: str = ""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message: the tools it called
    tool_call_id: str = ""  # a tool message: the id of the call whose result `content` is


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool
    interim_results: bool


class Provider(ABC):  # noqa: B024 - every hook is optional
    """Lifecycle shared by every provider: load (and warm up) once, close once."""

    name: str = "provider"
    # set by a fallback chain on its members but the last: another member can serve, so an
    # endpoint that cannot be reached at all is given up on at once rather than retried
    has_fallback: bool = False

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

    def rehear(self, text: str, gap: Samples) -> int:
        """Instead of `continues`: hear the end of the last turn (whose final words were `text`)
        again, then `gap` (the audio between that turn's end and this turn's first audio pushed),
        before this turn's audio, so words split by the pause are recognised whole. Returns how
        many samples the stream put before this turn's audio (0: it could not, and `continues` is
        the hint to use). When it did, this turn's transcripts have `revises` set. Default: 0."""
        return 0

    def keywords(self, words: Sequence[str]) -> None:  # noqa: B027 - optional hint
        """Domain terms to steer this stream's recognition toward (on top of the provider's own),
        for every turn it hears from now on."""

    @abstractmethod
    async def finalize(self) -> Transcript:
        """The final transcript of everything pushed; the stream is then empty for the next turn."""

    async def pause_transcript(self) -> Transcript | None:
        """After `speech_paused`: the transcript of the speech so far, which becomes the final one
        if the turn ends without more speech. None when the provider cannot tell early."""
        return None

    async def settle(self) -> None:  # noqa: B027 - optional hook
        """Fed faster than real time (`Listener.listen`): finish the background work that real
        time would have given the time for while the user went on speaking."""

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

    async def transcribe_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        """A whole recording with `options`. Default: `transcribe`, without context or timings;
        a recogniser that can honour them overrides this."""
        return await self.transcribe(audio)


# -- LLM ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """One request's generation settings (`LLM.stream_with`); None: the provider's configured value."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None


@dataclass
class Usage:
    """What a generation used, filled in by the provider as it goes (`LLM.stream_with`)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""  # "stop" (the model ended its reply) or "length" (max_tokens reached)


class LLM(Provider):
    # takes tool schemas and returns calls as data (OpenAI's `tools`); else `stream_tools` writes
    # them into the prompt in Qwen2.5's text format and reads the calls out of the reply
    native_tools: bool = False

    @abstractmethod
    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Text pieces of the reply as they are generated. Closing the iterator stops generation."""

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        """`stream` with one request's `sampling`, counting into `usage`. Default: `stream`, with
        the configured sampling and counts estimated (a piece per token, 4 characters a prompt
        token); a provider that can do better overrides this."""
        if usage is not None:
            usage.prompt_tokens = sum(len(m.content) for m in messages) // 4 + 4 * len(messages)
        return self._counted(self.stream(messages), usage)

    @staticmethod
    async def _counted(pieces: AsyncGenerator[str, None], usage: Usage | None) -> AsyncGenerator[str, None]:
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                if usage is not None:
                    usage.completion_tokens += 1
                yield piece
        if usage is not None:
            usage.finish_reason = "stop"

    def stream_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> AsyncGenerator[str | ToolCall, None]:
        """`stream` that may call `tools` (JSON schemas, OpenAI's `{"type": "function", ...}`):
        text pieces to speak, or `ToolCall`s (never spoken). Default: the tools in the system
        message and the calls parsed from the text (`providers/llm/tooltext.py`)."""
        from voxloop.providers.llm import tooltext

        return tooltext.stream(self, messages, tools)

    async def prefill(self, messages: Sequence[Message]) -> None:  # noqa: B027 - optional hint
        """A hint: a prompt starting with these messages is likely next (the last user message
        may still grow). A local model can evaluate it ahead of time; a remote one ignores it."""


# -- TTS ---------------------------------------------------------------------------------------
class TTS(Provider):
    sample_rate: int = 24000

    @abstractmethod
    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        """Audio chunks (mono float32 at `sample_rate`) for `text`, the first as soon as possible."""

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        """`synthesize` at `speed` times the voice's own pace. Default: only 1.0 (else ValueError);
        a voice that can change its pace overrides this."""
        if speed != 1.0:
            raise ValueError(f"the voice {self.name} speaks at one speed only")
        return self.synthesize(text)
