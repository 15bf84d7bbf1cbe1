"""Moonshine tiny (English) as a recogniser, on plain onnxruntime.

The weights are the `.ort` files inside the `moonshine-voice==0.1.0` wheel (the last version that
carries them); the package's own C library is not used. The encoder takes raw 16 kHz audio of any
length (no 30 s padding: its cost grows with the audio); the merged decoder runs a greedy loop
with its key/value cache, from start token 1 to end token 2, at most `TOKENS_PER_S` tokens per
second of audio so a decode that loops still ends. Moonshine has no beam search and no prompt:
`beam_size` and `context` are accepted and ignored.

It is not made for long audio: a decode longer than `MAX_PIECE_S` is cut into pieces at quiet
moments (`pieces.split_quiet`) and their texts joined. Streaming is `DecoderStream`, which decodes
a turn piece by piece between the speaker's pauses.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.config import STTConfig
from voxloop.errors import ModelMissing
from voxloop.models import MODELS, model_path
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript
from voxloop.providers.stt.pieces import frame_energy, split_quiet

log = logging.getLogger("voxloop.stt")

MODEL = "moonshine-tiny"
RATE = 16000
START, END = 1, 2  # <s>, </s>
FIRST_CONTROL = 32000  # ids from here on are control tokens (<<ST_0>>, ...), never text
SPACE = "\u2581"  # "▁": SentencePiece's word boundary
TOKENS_PER_S = 6.5  # the decode stops after this many tokens per second of audio (Moonshine's rule)
MIN_TOKENS = 10  # ... but at least this many: "Mm-hmm." alone takes 7 ("Mm-H" when cut off)
MIN_AUDIO_S = 0.1  # less than this is no speech (and the encoder needs ~0.06 s to give one frame)
# Silence appended to every piece: hearing the speech stop, Moonshine ends the sentence. Cut
# 0.13 s after the speech (a pause decode) 3 of 65 corpus clips ended in a comma, which makes the
# endpointer wait longer; with 0.2 s none did, and WER went 0.138 -> 0.132 (tuning speakers),
# 0.151 -> 0.149 (validation).
TAIL_S = 0.2
SILENCE_DBFS = -50.0  # no 100 ms louder than this: silence (the quietest corpus speech: -28)
# Longer audio is decoded in pieces cut at quiet moments. In one piece, read speech stayed as
# accurate as in pieces up to 40 s and looped from 44 s on (benchmarks/moonshine_long.py).
MAX_PIECE_S = 20.0
# Moonshine's answer to silence and noise: a lone "You" (or a "♪"). Its first token's probability
# does not tell it from speech (up to 0.95 on clicks, down to 0.3 on read speech).
NO_SPEECH_TEXT = frozenset({"you"})


def read_tokens(path: Path) -> list[bytes]:
    """tokenizer.bin: for each token in id order, its length then its UTF-8 bytes. A length byte
    of 128 or more is the low 7 bits of a two-byte length (the second byte holds the rest)."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        i += 1
        if n >= 128:
            n = (n - 128) + data[i] * 128
            i += 1
        tokens.append(data[i : i + n])
        i += n
    return tokens


def tokens_to_text(ids: list[int], vocab: list[bytes]) -> str:
    """The text of token ids: their bytes joined (byte-fallback tokens may each hold a part of
    one character), decoded as UTF-8, "▁" read as a space; special and control tokens dropped."""
    raw = b"".join(vocab[t] for t in ids if END < t < min(FIRST_CONTROL, len(vocab)))
    return raw.decode("utf-8", errors="replace").replace(SPACE, " ").strip()


def max_tokens(samples: int, rate: int = RATE) -> int:
    """The most tokens (the end token included) a decode of `samples` may generate."""
    return max(MIN_TOKENS, math.ceil(samples / rate * TOKENS_PER_S))


def loudest_dbfs(audio: Samples, rate: int = RATE) -> float:
    """RMS level (dBFS) of the loudest 100 ms of `audio` (in 20 ms steps)."""
    energy = frame_energy(audio, rate)
    width = min(5, len(energy))
    loudest = float(np.convolve(energy, np.ones(width) / width, mode="valid").max())
    return 10 * math.log10(max(loudest, 1e-12))


def no_speech_filtered(text: str) -> str:
    """`text`, or "" when it is what Moonshine says for no speech: a lone "You", or no letters
    or digits at all ("♪")."""
    if not any(ch.isalnum() for ch in text) or text.strip(" .!?,").lower() in NO_SPEECH_TEXT:
        return ""
    return text


class MoonshineSTT(STT):
    name = "moonshine"

    def __init__(self, config: STTConfig | None = None) -> None:
        self.config = config or STTConfig(provider="moonshine")
        self._encoder: Any = None
        self._decoder: Any = None
        self._vocab: list[bytes] = []
        self._past: dict[str, tuple[int, ...]] = {}  # the decoder's past_key_values.* inputs: shape
        self._present: list[str] = []  # its outputs after the logits: present.*, in that order
        self._worker = Worker("stt")  # partial transcripts
        self._final_worker = Worker("stt-final")  # pause and final decodes: the critical path

    async def load(self) -> None:
        if self._decoder is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        ort = require("onnxruntime", "vad")
        folder = model_path(MODEL)
        files = [folder / f for f in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")]
        for f in files:
            if not f.is_file():
                raise ModelMissing(
                    f"the Moonshine model has no {f.name} in {folder}",
                    f"reinstall it with: {MODELS[MODEL].install}",
                )
        if self.config.keywords:
            log.warning("Moonshine takes no prompt: the keywords %s are not used", self.config.keywords)
        t0 = time.perf_counter()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.config.threads
        opts.inter_op_num_threads = 1
        cpu = ["CPUExecutionProvider"]
        # One session per model serves both workers: onnxruntime runs a session from two threads.
        self._encoder = ort.InferenceSession(str(files[0]), opts, providers=cpu)
        self._decoder = ort.InferenceSession(str(files[1]), opts, providers=cpu)
        self._vocab = read_tokens(files[2])
        self._past = {  # (batch, heads, 1 placeholder position, head size)
            i.name: (1, i.shape[1], 1, i.shape[3])
            for i in self._decoder.get_inputs()
            if i.name.startswith("past_key_values.")
        }
        self._present = [o.name for o in self._decoder.get_outputs()[1:]]
        self.decode(np.zeros(RATE, np.float32) + 0.01)  # warm-up: the first runs allocate
        log.info("moonshine tiny loaded in %.1f s", time.perf_counter() - t0)

    # -- blocking decoders (worker thread only) --------------------------------------------------
    def decode(self, audio: Samples, beam_size: int | None = None, context: str = "") -> str:
        """The words in `audio` (any length; over `MAX_PIECE_S` it is decoded in pieces cut at
        quiet moments). Greedy; `beam_size` and `context` are ignored (Moonshine has neither)."""
        del beam_size, context
        audio = np.asarray(audio, np.float32)
        limit = min(self.config.max_piece_s, MAX_PIECE_S)
        texts = [self._decode_piece(audio[a:b]) for a, b in split_quiet(audio, RATE, limit)]
        return " ".join(t for t in texts if t)

    def _decode_piece(self, audio: Samples) -> str:
        if len(audio) < MIN_AUDIO_S * RATE or loudest_dbfs(audio, RATE) < SILENCE_DBFS:
            return ""
        audio = np.concatenate([audio, np.zeros(int(TAIL_S * RATE), np.float32)])
        return no_speech_filtered(tokens_to_text(self.generate(audio), self._vocab))

    def generate(self, audio: Samples) -> list[int]:
        """Greedy decoding: the token ids after the start token (the end token last, when it came
        before the cap)."""
        x = np.ascontiguousarray(audio, np.float32)[None]
        mask = np.ones(x.shape, np.int64)
        hidden = self._encoder.run(None, {"input_values": x, "attention_mask": mask})[0]
        # The first step computes every cache from scratch (the placeholders are ignored); later
        # steps feed back the decoder's self-attention cache, the cross-attention one stays.
        past = {name: np.zeros(shape, np.float32) for name, shape in self._past.items()}
        ids: list[int] = []
        token = START
        for step in range(max_tokens(len(audio))):
            out = self._decoder.run(
                None,
                {
                    "input_ids": np.array([[token]], np.int64),
                    "encoder_hidden_states": hidden,
                    "encoder_attention_mask": mask,
                    "use_cache_branch": np.array([step > 0]),
                    **past,
                },
            )
            token = int(out[0][0, -1].argmax())
            for name, value in zip(self._present, out[1:], strict=True):
                if step == 0 or ".decoder." in name:
                    past["past_key_values." + name.removeprefix("present.")] = value
            ids.append(token)
            if token == END:
                break
        return ids

    # -- async API -------------------------------------------------------------------------------
    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        if self._decoder is None:
            raise RuntimeError("MoonshineSTT.load() must run before stream()")
        from voxloop.providers.stt.stream import DecoderStream

        return DecoderStream(self, on_partial)

    async def transcribe(self, audio: Samples) -> Transcript:
        text = await self._final_worker.run(self.decode, audio)
        return Transcript(text, True, len(audio) / self.sample_rate)

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        if final:  # the words the reply is built on: never behind a partial
            return await self._final_worker.run(self.decode, audio, None, context)
        return await self._worker.run(self.decode, audio, None, context)

    async def aclose(self) -> None:
        self._worker.shutdown()
        self._final_worker.shutdown()
