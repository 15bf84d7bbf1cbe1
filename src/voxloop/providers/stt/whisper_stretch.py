"""A long turn's committed pieces heard again as one stretch, in Whisper's whole 30 s window, in
steps small enough to stop between.

Whisper hears a long stretch in its full window better than the same speech in pieces decoded in
short windows (long turns, the loop decoder with beam 5, 3 passes, errors tuning / validation:
12 s pieces in short windows 276 / 135, the turn in one 30 s window 232 / 108). That decode takes
1-2 s of the cores, too long to run where the turn may end: a reply waiting behind it starts late.
So it runs as about five steps (the features and the encoder; then the text, `CHUNK_TOKENS`
tokens at a time, each call going on from the tokens so far; then the alignment: 0.4 s each on
average here, whole long turns), and whoever drives it (`WhisperSTT.decode_stretch_async`) runs them only while the user speaks:
when the user pauses, the cores are left to the pause decode and the reply, and when the turn
ends, the rest is dropped.

A stretch that is not a clean hearing of its audio gives no result (None), and the pieces stand:
one that loops or repeats what the audio does not hold, skips a clause, stops short of the speech,
or hears silence.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from voxloop.providers.base import Samples
from voxloop.providers.stt.decoding import Decoding
from voxloop.providers.stt.pieces import speech_after
from voxloop.providers.stt.whisper_decoder import (
    MIN_REST_S,
    RATE,
    TAIL_S,
    WhisperDecoder,
    covered,
    max_length,
)
from voxloop.providers.stt.whisper_text import loop_start, unheard_repeats

log = logging.getLogger("voxloop.stt")
CHUNK_TOKENS = 24  # tokens per step of the text
STRETCH_S = 29.0  # the longest stretch heard at once (with the silence after it: < 30 s)
WINDOW = 3000  # Whisper's 30 s window, in feature frames


class StretchDecode:
    """One stretch decode of `audio` (at most `STRETCH_S`) after `context`, with `beam`.
    Blocking: call `step` on a worker thread until it returns True; `result` is then the decode
    (words timed in seconds into `audio`) or None (not a clean hearing: keep the pieces)."""

    def __init__(self, decoder: WhisperDecoder, audio: Samples, context: str, beam: int) -> None:
        if len(audio) > STRETCH_S * RATE:
            raise ValueError(f"a stretch is at most {STRETCH_S:.0f} s; got {len(audio) / RATE:.1f} s")
        self._dec = decoder
        self._audio = audio
        self._beam = beam
        self._seconds = len(audio) / RATE + TAIL_S
        self._prompt = decoder.prompt(context)
        self._most = int(self._seconds * 7 + 24)  # tokens at most (a guard against a loop)
        self._frames = 0
        self._encoded: Any = None
        self._ids: list[int] = []
        self._generated = False
        self.steps = 0
        self.result: Decoding | None = None

    def step(self) -> bool:
        """The next step; True when the decode is done."""
        self.steps += 1
        if self._encoded is None:
            self._encode()
            return False
        if not self._generated:
            self._generate()
            return False
        self.result = self._aligned()
        return True

    def _encode(self) -> None:
        import ctranslate2

        padded = np.concatenate([self._audio, np.zeros(int(TAIL_S * RATE), np.float32)])
        feats = self._dec.model.feature_extractor(padded)
        self._frames = min(WINDOW, feats.shape[-1])
        self._encoded = self._dec.encode(ctranslate2, feats, WINDOW)

    def _generate(self) -> None:
        """Up to `CHUNK_TOKENS` more tokens, going on from those so far. CTranslate2 takes the
        tokens after the start of the transcript as the decode's start and gives them back in
        front of the new ones; `max_length` bounds them all. The first call alone may begin with a
        blank or end at once, and its no-speech probability tells silence."""
        first = not self._ids
        total = min(len(self._ids) + CHUNK_TOKENS, self._most)
        length = max_length(len(self._prompt), total)
        res = self._dec.model.model.generate(
            self._encoded,
            [self._prompt + self._ids],
            beam_size=self._beam,
            max_length=length,
            suppress_blank=first,
            suppress_tokens=[-1],
            return_no_speech_prob=first,
        )[0]
        seq = [t for t in res.sequences_ids[0] if t < self._dec.tok.eot]
        if seq[: len(self._ids)] != self._ids:  # not as documented above: no stretch from this
            log.warning("a stretch decode did not go on from its tokens; the pieces stand")
            self._ids, self._generated = [], True
            return
        ended = len(seq) < min(length // 2, length - len(self._prompt) + 1)
        self._ids = seq
        if first and res.no_speech_prob > 0.6 and len(seq) <= 4:
            self._ids = []  # silence or noise heard as "Thank you."
            self._generated = True
        elif ended or len(seq) >= self._most:
            self._generated = True  # it ended before the length it was given, or reached the guard

    def _aligned(self) -> Decoding | None:
        tok = self._dec.tok
        text = tok.decode(self._ids).strip()
        if not self._ids:
            return None  # silence
        # a loop is judged on the words as aligned (`loop_start`): words said twice are not one
        words = self._dec.aligned(self._ids, self._encoded, self._frames)
        end = self._seconds - TAIL_S
        if len(unheard_repeats(words, end)) < len(words) or loop_start(words, end) is not None:
            log.debug("a stretch repeated words the audio does not hold; the pieces stand: %r", text)
            return None
        kept, stop, _ = covered(self._audio, text, words)
        if kept != text or stop is None or speech_after(self._audio, RATE, int(stop * RATE)) >= MIN_REST_S:
            log.debug("a stretch left speech out; the pieces stand: %r", text)
            return None
        return Decoding(text, tuple(words))
