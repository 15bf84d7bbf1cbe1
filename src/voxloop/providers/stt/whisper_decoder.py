"""One loaded Whisper model and its blocking decodes (run them on a worker thread).

`decode` is the loop's decoder: with `short_window` the encoder sees only the audio so far (at
least `min_window_s`), not Whisper's fixed 30 s, which is 2-4x faster here; a decode that loops
falls back to the standard window. It decodes without timestamps (more accurate on short pieces)
and aligns its words to the audio afterwards (cross-attention, as for word timestamps): a decode
that stopped before the speech did, or skipped a clause in the middle, is continued from where
its words stop covering the speech, so no word is dropped. `decode_timed` is `decode` with those
words' times (seconds into its audio; what the alignment gives at no extra cost): shifted by where
each piece and continuation begins, stitched as the text is, punctuation joined to its word.
`decode_standard` is Whisper's own offline path, the reference; `decode_batch` the same with
context and timings.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxloop.config import STTConfig
from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers.base import BatchOptions, Samples, Segment, Transcript, Word
from voxloop.providers.stt.decoding import Decoding, join_texts, joined, shift, whole_words
from voxloop.providers.stt.pieces import speech_after, speech_between, split_quiet
from voxloop.providers.stt.whisper_text import loop_start, looped, stitched, trim_loop, unheard_repeats

log = logging.getLogger("voxloop.stt")
TAIL_S = 0.4  # seconds of silence appended before decoding
RATE = 16000
MAX_CONTINUATIONS = 4  # a decode that stops early is continued from where it stopped, this often
MIN_REST_S = 0.3  # ... when at least this much speech-loud sound follows its last word
SKIP_GAP_S = 1.0  # a gap this long between two aligned words, with speech in it, is a skipped clause


def max_length(prompt: int, new: int) -> int:
    """CTranslate2's `max_length` for Whisper that lets a decode after a `prompt` of that many
    tokens (previous text and the start of the transcript) give `new` tokens (a guard against a
    decode that loops). It gives at most min(max_length // 2, max_length - prompt + 1), counting
    any tokens it was given to go on from (measured, CTranslate2 4.8): asked for `prompt + new`,
    a decode with no previous text stopped at half of `new`. At most 448: the decoder's
    positions."""
    return min(448, max(2 * new, prompt - 1 + new))


@dataclass(frozen=True)
class Decoded:
    """One pass of the decoder: its text, whether it looped, and where its words end: the last
    segment timestamp (`stop`) or every word aligned to the audio (`words`: whole words, their
    punctuation joined), or neither."""

    text: str
    looped: bool
    stop: float | None = None
    words: list[Word] | None = None


def covered(audio: Samples, text: str, words: list[Word]) -> tuple[str, float | None, list[Word]]:
    """The text up to the first stretch of speech its words leave out, where that stretch starts
    (seconds into `audio`: the end of the last word when none is left out in between), and those
    words. Punctuation on its own (a lone ",") is not a word: its time is unreliable."""
    said = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w.word)]
    for i, j in zip(said, said[1:], strict=False):
        before, after = words[i], words[j]
        gap = after.start - before.end
        if gap >= SKIP_GAP_S and speech_between(audio, RATE, before.end, after.start) >= MIN_REST_S:
            kept = words[: i + 1]
            log.info("a decode skipped %.1f s of speech after %.1f s; decoding from there", gap, before.end)
            return " ".join(w.word.strip() for w in kept), before.end, kept
    return text, words[said[-1]].end if said else None, words


class WhisperDecoder:
    """The model `name` ("tiny.en", "base"), loaded with `replicas` copies so that as many
    threads can decode at once, each on `config.threads` cores. Blocking: worker threads only."""

    def __init__(self, name: str, config: STTConfig, replicas: int = 2) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        fw = require("faster_whisper", "whisper")
        from faster_whisper.tokenizer import Tokenizer

        self.name, self.config = name, config
        t0 = time.perf_counter()
        self.model: Any = fw.WhisperModel(
            str(model_path(name)),
            device="cpu",
            compute_type="int8",
            cpu_threads=config.threads,
            num_workers=replicas,
            local_files_only=True,
        )
        multilingual = self.model.model.is_multilingual
        self.tok: Any = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe", language="en")
        self.decode(np.zeros(RATE, np.float32))  # warm-up: first decode allocates
        log.info("whisper %s loaded in %.1f s", name, time.perf_counter() - t0)

    def decode(self, audio: Samples, beam_size: int | None = None, context: str = "") -> str:
        """`decode_timed`'s text."""
        return self.decode_timed(audio, beam_size, context).text

    def decode_timed(self, audio: Samples, beam_size: int | None = None, context: str = "") -> Decoding:
        """Decode an utterance of any length with the (optionally) shortened encoder window;
        greedy unless `beam_size` says otherwise (default: the configured `beam_size`).
        `context`: the words said just before, as Whisper's previous-text prompt.

        Audio longer than `max_piece_s` is decoded in pieces cut at its quietest moments; a
        decode whose words stop short of the speech is continued from there. Its words' times are
        seconds into `audio` (none when a part of it has none: a looped decode)."""
        beam = beam_size or self.config.beam_size
        parts: list[Decoding] = []
        for start, end in split_quiet(audio, RATE, self.config.max_piece_s):
            d = self._decode_covering(audio[start:end], beam, join_texts([context, *(p.text for p in parts)]))
            parts.append(Decoding(d.text, shift(d.words, start / RATE)))
        return joined(parts)

    def _decode_covering(self, audio: Samples, beam: int, context: str) -> Decoding:
        parts: list[Decoding] = []
        pos = 0
        for _ in range(1 + MAX_CONTINUATIONS):
            text, stop_s, words = self._decode_once(
                audio[pos:], beam, join_texts([context, *(p.text for p in parts)])
            )
            parts.append(Decoding(text, shift(words, pos / RATE)))
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
        return stitched(parts)

    def _decode_once(self, audio: Samples, beam: int, context: str) -> tuple[str, float | None, list[Word]]:
        """One decode; returns its text, where its words stop covering the speech (seconds into
        `audio`; None when nothing tells) and its words aligned to `audio` (empty when not
        aligned). A decode that skipped a stretch of speech in the middle is cut before the skip,
        so the caller decodes the rest from there."""
        import ctranslate2

        # Trailing silence as audio, not as padded features: Whisper ends a sentence more reliably
        # when it hears the speech stop (a pause decode has only ~0.1 s of it; "France" -> "friends").
        padded = np.concatenate([audio, np.zeros(int(TAIL_S * RATE), np.float32)])
        feats = self.model.feature_extractor(padded)
        frames = feats.shape[-1]
        window = 3000
        if self.config.short_window:
            window = min(3000, max(int(self.config.min_window_s * 100), frames + 50))
        secs = len(padded) / RATE
        d = self._generate(ctranslate2, feats, window, secs, beam, context)
        if d.looped and window < 3000:
            log.debug("decode looped with a %.0f s window; retrying with 30 s: %r", window / 100, d.text)
            d = self._generate(ctranslate2, feats, 3000, secs, beam, context)
        if d.looped:  # where a trimmed loop stopped means nothing
            return (d.text if d.words is not None else trim_loop(d.text)), None, []
        if d.words is not None:
            return covered(audio, d.text, d.words)
        return d.text, d.stop, []

    def encode(self, ct2: Any, feats: np.ndarray, window: int) -> Any:
        """The encoder's output for the features `feats` in a window of `window` frames (cut or
        padded with silence features to it)."""
        feats = np.pad(feats[:, :window], ((0, 0), (0, window - min(window, feats.shape[-1]))))
        view = ct2.StorageView.from_array(np.ascontiguousarray(feats[None], dtype=np.float32))
        return self.model.model.encode(view)

    def aligned(self, ids: list[int], encoded: Any, frames: int) -> list[Word]:
        """The decoded tokens `ids` aligned to the audio (cross-attention over its first `frames`
        feature frames, as for word timestamps), as whole words timed in seconds into it."""
        found = self.model.find_alignment(self.tok, [ids], encoded, frames)[0]
        tokens = [Word(w["word"], float(w["start"]), float(w["end"]), float(w["probability"])) for w in found]
        return whole_words(tokens)

    def prompt(self, context: str, stamped: bool = False) -> list[int]:
        """The decoder's prompt: the keywords and `context` as previous text (at most the last 100
        tokens: the prompt is at most half of the decoder's context), then the start of a
        transcript, with segment timestamps or without."""
        tok = self.tok
        prompt: list[int] = []
        before = ", ".join(self.config.keywords)
        if context:
            before = f"{before}. {context}" if before else context
        if before:
            prompt = [tok.sot_prev, *tok.encode(" " + before.strip())[-100:]]
        return prompt + (list(tok.sot_sequence) if stamped else [*tok.sot_sequence, tok.no_timestamps])

    def _generate(
        self, ct2: Any, feats: np.ndarray, window: int, seconds: float, beam: int, context: str = ""
    ) -> Decoded:
        content = min(window, feats.shape[-1])
        encoded = self.encode(ct2, feats, window)
        tok = self.tok
        # Without timestamps Whisper is more accurate (corpus clips: WER 0.147 vs 0.163); where its
        # words end is then found by aligning them to the audio (cross-attention, as for word
        # timestamps), which shows a decode that stopped early or skipped a clause. With
        # `timestamps_from_s` reached, segment timestamps are used instead.
        stamped = seconds - TAIL_S >= self.config.timestamps_from_s
        prompt = self.prompt(context, stamped)
        res = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=beam,
            # counted as CTranslate2 counts it (`max_length`), this cap allows about half of the
            # 7 tokens a second meant; kept: asked for as meant, greedy finals on a busy machine
            # let "Turn on the living room lamp. Turn on the" through, and a long piece it cuts is
            # continued from where it stopped (corpus clips: 3 errors in 5 passes, long turns: none)
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
            return Decoded("", False)  # Whisper's "Thank you." on silence or noise
        if stamped:
            return Decoded(text, looped(text), stop=max(stamps) if stamps else None)
        if not ids or not self.config.align_words:
            return Decoded(text, looped(text))
        words = self.aligned(ids, encoded, content)
        kept = unheard_repeats(words, seconds - TAIL_S)
        cut = loop_start(kept, seconds - TAIL_S)
        if cut is not None:  # the loop cut before its first unheard repeat: `_decode_once` takes it so
            kept = kept[:cut]
        if len(kept) < len(words):
            log.debug("a decode repeated words the audio does not hold: %r", text)
            text = " ".join(w.word.strip() for w in kept)
        return Decoded(text, cut is not None, words=kept)

    def decode_standard(self, audio: Samples) -> str:
        """Whisper's standard offline path (30 s windows), as a reference and for batch work.
        Audio longer than one window is decoded with timestamps: each window then starts where the
        last one's last segment ended (without them, a window whose decode stops early drops the
        rest of its 30 s: 40 of 104 words of a 38 s turn here). One window is decoded without
        them, which is more accurate on short clips (WER 0.152 vs 0.166 on the shared corpus)."""
        kw = " ".join(self.config.keywords) or None
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=5,
            without_timestamps=len(audio) <= 30 * RATE,
            chunk_length=30,
            condition_on_previous_text=False,
            hotwords=kw,
        )
        return " ".join(s.text.strip() for s in segments).strip()  # consumed here, in the worker

    def decode_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        """`decode_standard` with `options`: the context as Whisper's initial prompt, and with
        `timings` segment timestamps and word timings (faster-whisper's cross-attention alignment)."""
        kw = " ".join(self.config.keywords) or None
        segments, _ = self.model.transcribe(
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
