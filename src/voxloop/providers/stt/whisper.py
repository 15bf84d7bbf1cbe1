"""faster-whisper as a streaming recogniser.

The turn is decoded in pieces that end where the speaker paused (`providers/stt/stream.py`):
partials re-decode the open piece, a pause decodes it at once on a second worker (the model runs
two replicas, so the pause decode never waits behind a partial), and a decode never holds more
than one stretch of speech. With `short_window` the encoder sees only the audio so far (at least
`min_window_s`), not Whisper's fixed 30 s, which is 2-4x faster here; a decode that loops falls
back to the standard window. A decode that stops early (its last timestamp well before the sound
ends) is continued from where it stopped, so no word at the end of a piece is dropped.
"""

from __future__ import annotations

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
from voxloop.providers.base import (
    STT,
    BatchOptions,
    PartialCallback,
    Samples,
    Segment,
    STTStream,
    Transcript,
    Word,
)
from voxloop.providers.stt.pieces import speech_after, split_quiet
from voxloop.providers.stt.stream import DecoderStream, join_texts

log = logging.getLogger("voxloop.stt")
TAIL_S = 0.4  # seconds of silence appended before decoding
RATE = 16000
MAX_CONTINUATIONS = 4  # a decode that stops early is continued from where it stopped, this often
MIN_REST_S = 0.3  # ... when at least this much speech-loud sound follows its last timestamp


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
        """Decode an utterance of any length with the (optionally) shortened encoder window;
        greedy unless `beam_size` says otherwise (default: the configured `beam_size`).
        `context`: the words said just before, as Whisper's previous-text prompt.

        Audio longer than `max_piece_s` is decoded in pieces cut at its quietest moments; a
        decode whose last timestamp falls short of the speech is continued from there."""
        beam = beam_size or self.config.beam_size
        texts: list[str] = []
        for start, end in split_quiet(audio, RATE, self.config.max_piece_s):
            texts.append(self._decode_covering(audio[start:end], beam, join_texts([context, *texts])))
        return join_texts(texts)

    def _decode_covering(self, audio: Samples, beam: int, context: str) -> str:
        texts: list[str] = []
        pos = 0
        for _ in range(1 + MAX_CONTINUATIONS):
            text, stop_s = self._decode_once(audio[pos:], beam, join_texts([context, *texts]))
            texts.append(text)
            if stop_s is None:
                break  # no timestamps: nothing tells where it stopped
            stop = pos + int(stop_s * RATE)
            if stop <= pos + int(MIN_REST_S * RATE) or len(audio) - stop < int(2 * MIN_REST_S * RATE):
                break  # no progress, or nothing left
            rest = speech_after(audio, RATE, stop)
            if rest < MIN_REST_S:
                break
            log.info(
                "a decode stopped at %.1f s of %.1f s with %.1f s of speech after it; decoding the rest",
                stop / RATE,
                len(audio) / RATE,
                rest,
            )
            pos = stop
        return stitch(texts)

    def _decode_once(self, audio: Samples, beam: int, context: str) -> tuple[str, float | None]:
        """One decode; returns its text and where its last timestamp says the words end (seconds
        into `audio`; None without timestamps)."""
        import ctranslate2

        # Trailing silence as audio, not as padded features: Whisper ends a sentence more reliably
        # when it hears the speech stop (a pause decode has only ~0.1 s of it; "France" -> "friends").
        padded = np.concatenate([audio, np.zeros(int(TAIL_S * RATE), np.float32)])
        feats = self._model.feature_extractor(padded)
        frames = feats.shape[-1]
        window = 3000
        if self.config.short_window:
            window = min(3000, max(int(self.config.min_window_s * 100), frames + 50))
        secs = len(padded) / RATE
        text, looped, stop = self._generate(ctranslate2, feats, window, secs, beam, context)
        if looped and window < 3000:
            log.debug("decode looped with a %.0f s window; retrying with 30 s: %r", window / 100, text)
            text, looped, stop = self._generate(ctranslate2, feats, 3000, secs, beam, context)
        if looped:
            return _trim_loop(text), None  # where a trimmed loop stopped means nothing
        return text, stop

    def _generate(
        self, ct2: Any, feats: np.ndarray, window: int, seconds: float, beam: int, context: str = ""
    ) -> tuple[str, bool, float | None]:
        feats = feats[:, :window]
        feats = np.pad(feats, ((0, 0), (0, window - feats.shape[-1])))
        tok = self._tok
        prompt: list[int] = []
        before = ", ".join(self.config.keywords)
        if context:
            before = f"{before}. {context}" if before else context
        if before:  # at most the last 100 tokens: the prompt is at most half of the decoder's context
            prompt = [tok.sot_prev, *tok.encode(" " + before.strip())[-100:]]
        # With timestamps the decoder marks where each segment ends, so a decode that stops early
        # is seen (and continued from there). Without them (`timestamps_from_s`) it is a little
        # more accurate on short clips, but skips clauses in long pieces.
        stamped = seconds - TAIL_S >= self.config.timestamps_from_s
        prompt += list(tok.sot_sequence) if stamped else [*tok.sot_sequence, tok.no_timestamps]
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
        seq = res.sequences_ids[0]
        ids = [t for t in seq if t < tok.eot]
        stamps = [(t - tok.timestamp_begin) * 0.02 for t in seq if t >= tok.timestamp_begin]
        text = tok.decode(ids).strip()
        if res.no_speech_prob > 0.6 and len(ids) <= 4:
            return "", False, None  # Whisper's "Thank you." on silence or noise
        stop = max(stamps) if stamps and stamped else None
        return text, _looped(text), stop

    def decode_standard(self, audio: Samples) -> str:
        """Whisper's standard offline path (30 s windows), as a reference and for batch work.
        Audio longer than one window is decoded with timestamps: each window then starts where the
        last one's last segment ended (without them, a window whose decode stops early drops the
        rest of its 30 s: 40 of 104 words of a 38 s turn here). One window is decoded without
        them, which is more accurate on short clips (WER 0.152 vs 0.166 on the shared corpus)."""
        kw = " ".join(self.config.keywords) or None
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=5,
            without_timestamps=len(audio) <= 30 * RATE,
            chunk_length=30,
            condition_on_previous_text=False,
            hotwords=kw,
        )
        return " ".join(s.text.strip() for s in segments).strip()  # consumed here, in the worker

    # -- async API -------------------------------------------------------------------------------
    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        if self._model is None:
            raise RuntimeError("WhisperSTT.load() must run before stream()")
        return DecoderStream(self, on_partial)

    async def transcribe(self, audio: Samples) -> Transcript:
        text = await self._worker.run(self.decode_standard, audio)
        return Transcript(text, True, len(audio) / self.sample_rate)

    async def transcribe_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        return await self._worker.run(self.decode_batch, audio, options)

    def decode_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        """`decode_standard` with `options`: the context as Whisper's initial prompt, and with
        `timings` segment timestamps and word timings (faster-whisper's cross-attention alignment)."""
        kw = " ".join(self.config.keywords) or None
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=5,
            without_timestamps=not options.timings and len(audio) <= 30 * RATE,
            word_timestamps=options.timings,
            chunk_length=30,
            condition_on_previous_text=False,
            hotwords=kw,
            initial_prompt=options.context.strip() or None,
            # a segment this likely silent and this unsure is skipped (Whisper's rule; its 0.6 let a
            # prompted decode end a corpus clip with "Thank you." at 0.58)
            no_speech_threshold=0.5,
            **({"temperature": options.temperature} if options.temperature > 0 else {}),
        )
        segs: list[Segment] = []
        words: list[Word] = []
        for seg in segments:  # consumed here, in the worker
            text = seg.text.strip()
            if not text:
                continue
            segs.append(Segment(text, seg.start, seg.end, seg.avg_logprob, seg.no_speech_prob))
            words += [Word(w.word.strip(), w.start, w.end, w.probability) for w in seg.words or ()]
        return Transcript(" ".join(s.text for s in segs), True, len(audio) / RATE, tuple(words), tuple(segs))

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        if final:  # the words the reply is built on: on their own replica, with the final beam
            return await self._final_worker.run(self.decode, audio, self.config.final_beam_size, context)
        return await self._worker.run(self.decode, audio, None, context)

    async def aclose(self) -> None:
        self._worker.shutdown()
        self._final_worker.shutdown()


def stitch(texts: list[str]) -> str:
    """Join the texts of decodes that follow each other, dropping words a continuation repeats
    from the end of the text before it (it started at a timestamp inside the last word or two)."""
    out: list[str] = []
    for text in texts:
        words = text.split()
        tail = _norm(out[-4:])
        for k in range(min(4, len(words), len(tail)), 0, -1):
            if tail[-k:] == _norm(words[:k]):
                words = words[k:]
                break
        out += words
    return " ".join(out)


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
