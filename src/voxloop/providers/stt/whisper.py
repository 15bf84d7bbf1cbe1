"""faster-whisper as a streaming recogniser.

Partials: the growing turn buffer is re-decoded every `partial_interval_s`. When the VAD reports a
pause, the buffer is decoded at once on a second worker (the model runs two replicas), so the pause
decode never waits behind a partial in flight; by the time the silence has lasted long enough to
end the turn, the final transcript is usually ready (`finalize` then costs nothing). With
`short_window` the encoder sees only the audio so far (at least `min_window_s`), not Whisper's
fixed 30 s, which is 2-4x faster here; a decode that loops falls back to the standard window.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from typing import Any

import numpy as np

from voxloop.config import STTConfig
from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript

log = logging.getLogger("voxloop.stt")
TAIL_S = 0.4  # seconds of silence appended before decoding


class WhisperSTT(STT):
    name = "whisper"

    def __init__(self, config: STTConfig | None = None) -> None:
        self.config = config or STTConfig()
        self._model: Any = None
        self._tok: Any = None
        self._worker = Worker("stt")  # partial transcripts
        self._final_worker = Worker("stt-final")  # pause and final decodes: the critical path

    async def load(self) -> None:
        if self._model is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        fw = require("faster_whisper", "whisper")
        from faster_whisper.tokenizer import Tokenizer

        path = model_path(self.config.model)
        t0 = time.perf_counter()
        self._model = fw.WhisperModel(
            str(path),
            device="cpu",
            compute_type="int8",
            cpu_threads=self.config.threads,
            num_workers=2,  # a replica per worker thread: partials and pause decodes run side by side
            local_files_only=True,
        )
        lang = None if self._model.model.is_multilingual else "en"
        self._tok = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language=lang or "en",
        )
        self.decode(np.zeros(16000, np.float32))  # warm-up: first decode allocates
        log.info("whisper %s loaded in %.1f s", self.config.model, time.perf_counter() - t0)

    # -- blocking decoders (worker thread only) --------------------------------------------------
    def decode(self, audio: Samples, beam_size: int | None = None, context: str = "") -> str:
        """Decode one short utterance with the (optionally) shortened encoder window; greedy
        unless `beam_size` says otherwise (default: the configured `beam_size`). `context`: the
        words said just before, as Whisper's previous-text prompt."""
        import ctranslate2

        # Trailing silence as audio, not as padded features: Whisper ends a sentence more reliably
        # when it hears the speech stop (a pause decode has only ~0.1 s of it; "France" -> "friends").
        audio = np.concatenate([audio, np.zeros(int(TAIL_S * 16000), np.float32)])
        feats = self._model.feature_extractor(audio)
        frames = feats.shape[-1]
        window = 3000
        if self.config.short_window:
            window = min(3000, max(int(self.config.min_window_s * 100), frames + 50))
        beam = beam_size or self.config.beam_size
        secs = len(audio) / 16000
        text, looped = self._generate(ctranslate2, feats, window, secs, beam, context)
        if looped and window < 3000:
            log.debug("decode looped with a %.0f s window; retrying with 30 s: %r", window / 100, text)
            text, looped = self._generate(ctranslate2, feats, 3000, secs, beam, context)
        return _trim_loop(text) if looped else text

    def _generate(
        self, ct2: Any, feats: np.ndarray, window: int, seconds: float, beam: int, context: str = ""
    ) -> tuple[str, bool]:
        feats = feats[:, :window]
        feats = np.pad(feats, ((0, 0), (0, window - feats.shape[-1])))
        tok = self._tok
        prompt: list[int] = []
        before = ", ".join(self.config.keywords)
        if context:
            before = f"{before}. {context}" if before else context
        if before:  # at most the last 100 tokens: the prompt is at most half of the decoder's context
            prompt = [tok.sot_prev, *tok.encode(" " + before.strip())[-100:]]
        # With timestamps the decoder marks where the speech ends and stops there; without them,
        # a window that is mostly padding invites it to start the sentence over.
        prompt += list(tok.sot_sequence) if self.config.timestamps else [*tok.sot_sequence, tok.no_timestamps]
        view = ct2.StorageView.from_array(np.ascontiguousarray(feats[None], dtype=np.float32))
        res = self._model.model.generate(
            view,
            [prompt],
            beam_size=beam,
            # counted from the start of the prompt (a shorter one crashes CTranslate2); 448: the
            # decoder's positions
            max_length=min(448, len(prompt) + int(seconds * 7 + 24)),
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        ids = [t for t in res.sequences_ids[0] if t < tok.eot]
        text = tok.decode(ids).strip()
        if res.no_speech_prob > 0.6 and len(ids) <= 4:
            return "", False  # Whisper's "Thank you." on silence or noise
        return text, _looped(text)

    def decode_standard(self, audio: Samples) -> str:
        """Whisper's standard offline path (30 s windows), as a reference and for batch work."""
        kw = " ".join(self.config.keywords) or None
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=5,
            without_timestamps=True,
            chunk_length=30,
            condition_on_previous_text=False,
            hotwords=kw,
        )
        return " ".join(s.text.strip() for s in segments).strip()  # consumed here, in the worker

    # -- async API -------------------------------------------------------------------------------
    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        if self._model is None:
            raise RuntimeError("WhisperSTT.load() must run before stream()")
        return _WhisperStream(self, on_partial)

    async def transcribe(self, audio: Samples) -> Transcript:
        text = await self._worker.run(self.decode_standard, audio)
        return Transcript(text, True, len(audio) / self.sample_rate)

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        if final:  # the words the reply is built on: on their own replica, with the final beam
            return await self._final_worker.run(self.decode, audio, self.config.final_beam_size, context)
        return await self._worker.run(self.decode, audio, None, context)

    async def aclose(self) -> None:
        self._worker.shutdown()
        self._final_worker.shutdown()


def _norm(words: list[str]) -> list[str]:
    return [w.strip(".,!?;:").lower() for w in words]


def _first_repeat(words: list[str]) -> int | None:
    """Index where a run of 4 words occurs a second time (not overlapping the first), if any."""
    norm = _norm(words)
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(norm) - 3):
        gram = tuple(norm[i : i + 4])
        if gram in seen and i - seen[gram] >= 4:
            return i
        seen.setdefault(gram, i)
    return None


def _first_stutter(words: list[str]) -> int | None:
    """Index of the second occurrence of a phrase of 2-3 words said three times in a row ("ladies
    and ladies and ladies and"), or of one word said four times ("5, 5, 5, 5"), if any."""
    norm = _norm(words)
    for i in range(len(norm)):
        for k, times in ((1, 4), (2, 3), (3, 3)):
            gram = norm[i : i + k]
            if len(gram) == k and all(norm[i + j * k : i + (j + 1) * k] == gram for j in range(times)):
                return i + k
    return None


def _looped(text: str) -> bool:
    """A decode that starts over: a run of 4+ words that occurs twice, a short phrase repeated
    over and over, or text that compresses far better than speech does ("5 5 5 5 ...")."""
    words = text.split()
    if _first_repeat(words) is not None or _first_stutter(words) is not None:
        return True
    raw = text.encode()
    return len(raw) > 24 and len(raw) / len(zlib.compress(raw)) > 2.4


def _trim_loop(text: str) -> str:
    """Cut a looped decode before its first repeat (of 4+ words, or of a stuttered phrase)."""
    words = text.split()
    cuts = [c for c in (_first_repeat(words), _first_stutter(words)) if c is not None]
    return text if not cuts else " ".join(words[: min(cuts)])


class _WhisperStream(STTStream):
    def __init__(self, stt: WhisperSTT, on_partial: PartialCallback | None) -> None:
        self._stt = stt
        self._on_partial = on_partial
        self._chunks: list[Samples] = []
        self._n = 0
        self._task: asyncio.Task[None] | None = None  # the partial decode in flight
        self._pause_task: asyncio.Task[tuple[int, str]] | None = None  # the pause decode
        self._last_decode_at = 0  # samples covered when the last partial decode was started
        self._last_cost = 0.0  # seconds the last partial decode took
        self._paused = False
        self._context = ""  # words said just before this turn (`continues`)

    def _audio(self) -> Samples:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    async def push(self, audio: Samples) -> None:
        self._chunks.append(audio.astype(np.float32, copy=False))
        self._n += len(audio)
        # Partials no more often than every interval, and never more than half the time: a long
        # turn's decode gets slower, so the gap after it grows with it.
        gap = max(self._stt.config.partial_interval_s, self._last_cost)
        if (
            not self._paused
            and (self._task is None or self._task.done())
            and self._n - self._last_decode_at >= int(gap * self._stt.sample_rate)
        ):
            audio_now = self._audio()[: self._n]
            self._last_decode_at = self._n
            self._task = asyncio.get_running_loop().create_task(self._partial(audio_now))

    async def _partial(self, audio: Samples) -> None:
        t0 = time.perf_counter()
        text = await self._stt.decode_async(audio, context=self._context)
        self._last_cost = time.perf_counter() - t0
        # A partial that lands during a pause is older than the pause decode: keep it to yourself.
        if self._on_partial is not None and text and not self._paused:
            self._on_partial(Transcript(text, False, len(audio) / self._stt.sample_rate))

    async def _pause_decode(self, audio: Samples) -> tuple[int, str]:
        return len(audio), await self._stt.decode_async(audio, final=True, context=self._context)

    def continues(self, text: str) -> None:
        self._context = text.strip()

    def speech_paused(self) -> None:
        self._paused = True  # the pause decode covers what follows: no partials until resumed
        audio = self._audio()[: self._n]
        self._pause_task = asyncio.get_running_loop().create_task(self._pause_decode(audio))

    def speech_resumed(self) -> None:
        self._paused = False
        self._pause_task = None  # its words are out of date; it finishes on its own

    async def pause_transcript(self) -> Transcript | None:
        task = self._pause_task
        if task is None:
            return None
        n, text = await asyncio.shield(task)  # a cancelled caller must not cancel the decode
        if task is not self._pause_task:
            return None  # the user went on while it ran
        return Transcript(text, True, n / self._stt.sample_rate)

    async def finalize(self) -> Transcript:
        n = self._n
        task = self._pause_task
        if task is not None:
            heard, text = await asyncio.shield(task)  # no speech since the pause: the rest is silence
        else:
            heard = n
            audio = self._audio()[:n]
            text = (
                await asyncio.shield(self._stt.decode_async(audio, final=True, context=self._context))
                if n
                else ""
            )
        rest = self._audio()[n:]  # audio pushed while this ran belongs to the next turn
        self._chunks, self._n, self._last_decode_at = ([rest] if len(rest) else []), len(rest), 0
        self._pause_task, self._paused, self._context = None, False, ""
        return Transcript(text, True, heard / self._stt.sample_rate)

    async def aclose(self) -> None:
        for task in (self._task, self._pause_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
