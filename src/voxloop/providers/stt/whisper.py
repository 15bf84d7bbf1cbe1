"""faster-whisper as a streaming recogniser: a fast model for partials, an accurate one for finals.

The turn is decoded in pieces that end where the speaker paused (`providers/stt/stream.py`):
partials re-decode the open piece with `model` (greedy: they are hints); a pause decodes it at
once, on a second worker, with `final_model` and the final beam: those are the words the reply is
built on. A decode never holds more than one stretch of speech, and one that stops early or skips
a clause is continued (`whisper_decoder.py`). A long turn's committed pieces are heard again as
one stretch in Whisper's full window, in short steps on the partials' worker that run only while
the user speaks (`whisper_stretch.py`).

Measured on the shared corpus (`voxloop bench wer`, WER streaming / offline standard path):
tiny.en alone 0.159 / 0.147 on the clips and 0.164 / 0.134 on the long turns; base for the finals
0.149 / 0.142 and 0.139 / 0.132. base decodes about 2.5x slower than tiny.en
(+~250 ms before every reply), so the default is tiny.en for both. `later_model` can hear a
long turn's later pieces (after a committed one, the turn's last among them) with another model:
with base, 5 dithered passes, word errors tuning / validation, long turns 428 / 206 -> 419 / 186
(tiny.en offline 415 / 178), but corpus clips 504 / 304 -> 532 / 300 (offline 509 / 298: two
clips' last pieces heard worse, +25), and long turns' replies came ~0.65 s later (the
pause decode at their end, and the language model reading the words again where base's differ
from the partials it read). Over both, errors moved between speakers rather than fell, so it is
an option, not the default.

When other processes keep the cores busy (`busy_cores`), the finals come from `model` with
`busy_final_beam_size` (greedy): on a busy machine an answer now beats an exact one late. With
`busy_model` "moonshine" (`--stt-busy-model`), partials and finals both come from Moonshine tiny
instead, the faster and, over both parts, the more accurate of the cheap choices. Whole corpus
clips, decode ms per second of audio p50 / p95 and WER tuning / validation
(`benchmarks/busy_decoders.py`, 2026-12-03): beside two busy processes, tiny.en greedy
66 / 181 ms, 0.193 / 0.140; Moonshine 41 / 56 ms, 0.132 / 0.147 (tiny.en beam 5: 80 / 166 ms,
0.165 / 0.127). It is not the default: Moonshine's decodes carry no word times and take no
prompt, so on a busy machine a turn decided too early would not be heard again with what
followed, a long decode that stopped early would not be continued, and keywords would not steer
it (the tests of those failed under `make test` beside two compiles).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from voxloop.config import STTConfig
from voxloop.cpu import CpuMonitor
from voxloop.errors import VoxloopError
from voxloop.providers._worker import Worker
from voxloop.providers.base import STT, BatchOptions, PartialCallback, Samples, STTStream, Transcript
from voxloop.providers.stt.decoding import Decoding
from voxloop.providers.stt.moonshine import MoonshineSTT
from voxloop.providers.stt.stream import DecoderStream
from voxloop.providers.stt.whisper_decoder import WhisperDecoder
from voxloop.providers.stt.whisper_stretch import StretchDecode

log = logging.getLogger("voxloop.stt")


class WhisperSTT(STT):
    name = "whisper"

    def __init__(self, config: STTConfig | None = None, cpu: CpuMonitor | None = None) -> None:
        self.config = config or STTConfig()
        self._fast: WhisperDecoder | None = None  # partials (and finals on a busy machine)
        self._exact: WhisperDecoder | None = None  # pause and final decodes, the offline path
        self._later: WhisperDecoder | None = None  # ... of a long turn's later pieces
        self._light: MoonshineSTT | None = None  # every decode of the loop on a busy machine
        self._cpu = cpu
        self._busy = False  # the cores were busy at the last decode (logged when it changes)
        self._worker = Worker("stt")  # partial transcripts
        self._final_worker = Worker("stt-final")  # pause and final decodes: the critical path

    @property
    def final_model(self) -> str:
        return self.config.final_model or self.config.model

    async def load(self) -> None:
        if self._fast is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        # Two replicas each: a partial and a pause decode run side by side without waiting.
        fast = WhisperDecoder(self.config.model, self.config)
        exact = (
            fast if self.final_model == self.config.model else WhisperDecoder(self.final_model, self.config)
        )
        if self._cpu is None:
            self._cpu = CpuMonitor()
        self._light = self._load_light()
        self._later = self._load_later(fast, exact)
        self._fast, self._exact = fast, exact

    @property
    def later_model(self) -> str:
        return self.config.later_model or self.final_model

    def _load_later(self, fast: WhisperDecoder, exact: WhisperDecoder) -> WhisperDecoder:
        name = self.later_model
        for loaded in (exact, fast):
            if loaded.name == name:
                return loaded
        try:  # one copy: only the pause and final decodes use it, one at a time
            return WhisperDecoder(name, self.config, replicas=1)
        except VoxloopError as e:
            log.warning(
                "stt: whisper %s not available for long turns (%s; %s); they are heard by %s",
                name,
                e.message,
                e.hint,
                exact.name,
            )
            return exact

    def _load_light(self) -> MoonshineSTT | None:
        if self.config.busy_model != "moonshine":
            return None
        light = MoonshineSTT(replace(self.config, provider="moonshine", keywords=[]))
        try:
            light._load()
        except VoxloopError as e:  # not installed: the busy finals come from `model`, greedy
            log.warning(
                "stt: no Moonshine for a busy machine (%s); busy finals from %s", e.message, self.config.model
            )
            return None
        return light

    def _decoders(self) -> tuple[WhisperDecoder, WhisperDecoder]:
        if self._fast is None or self._exact is None:
            raise RuntimeError("WhisperSTT.load() must run before it decodes")
        return self._fast, self._exact

    def _final_decoder(self, later: bool) -> WhisperDecoder:
        exact = self._decoders()[1]
        return self._later if later and self._later is not None else exact

    def _is_busy(self) -> bool:
        """Whether other processes keep `busy_cores` or more busy (logged when it changes)."""
        others = self._cpu.others() if self._cpu is not None else None
        busy = others is not None and others >= self.config.busy_cores
        if busy != self._busy:
            self._busy = busy
            if not busy:
                log.info("stt: the cores are free again: transcripts from whisper %s", self.final_model)
            elif self._light is not None:
                log.info("stt: other processes keep %.1f cores busy: transcripts from Moonshine tiny", others)
            else:
                log.info(
                    "stt: other processes keep %.1f cores busy: final transcripts from %s with beam %d",
                    others,
                    self.config.model,
                    self.config.busy_final_beam_size,
                )
        return busy

    def _light_now(self) -> MoonshineSTT | None:
        """Moonshine, when it is configured and other processes keep the cores busy."""
        self._decoders()  # loaded, or say so
        return self._light if self._light is not None and self._is_busy() else None

    # -- the contract ----------------------------------------------------------------------------
    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        self._decoders()
        return DecoderStream(self, on_partial)

    async def transcribe(self, audio: Samples) -> Transcript:
        text = await self._worker.run(self._decoders()[1].decode_standard, audio)
        return Transcript(text, True, len(audio) / self.sample_rate)

    async def transcribe_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        return await self._worker.run(self._decoders()[1].decode_batch, audio, options)

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        """`audio` decoded by the loop's decoder: a partial (greedy, fast model) or, with `final`,
        the words the reply is built on (final beam, accurate model, their own worker)."""
        if final:
            return (await self.decode_timed_async(audio, context)).text
        light = self._light_now()
        if light is not None:
            return await self._worker.run(light.decode, audio)
        return await self._worker.run(self._decoders()[0].decode, audio, None, context)

    async def decode_timed_async(self, audio: Samples, context: str = "", later: bool = False) -> Decoding:
        """A final decode (`decode_async` with `final`) with its words' times, seconds into `audio`
        (the alignment every decode makes anyway: no extra cost); `later`: a long turn's later
        piece, heard by `later_model`. On a busy machine: the fast model with
        `busy_final_beam_size`, or with Moonshine configured, its text alone."""
        fast = self._decoders()[0]
        if not self._is_busy():
            return await self._final_worker.run(
                self._final_decoder(later).decode_timed, audio, self.config.final_beam_size, context
            )
        if self._light is not None:
            return Decoding(await self._final_worker.run(self._light.decode, audio))
        return await self._final_worker.run(
            fast.decode_timed, audio, self.config.busy_final_beam_size, context
        )

    async def decode_stretch_async(
        self, audio: Samples, context: str, go: Callable[[], Awaitable[object]]
    ) -> Decoding | None:
        """A long turn's committed pieces heard again as one stretch (`whisper_stretch.py`): the
        final model and beam in Whisper's full window, on the partials' worker, one short step at
        a time, each after `go()` (the stream's "the user is speaking"). None on a busy machine
        (the cores are wanted elsewhere) or when the stretch is not a clean hearing."""
        exact = self._decoders()[1]
        if self._is_busy():
            return None
        job = StretchDecode(exact, audio, context, self.config.final_beam_size)
        while True:
            await go()
            if await self._worker.run(job.step):
                return job.result

    async def aclose(self) -> None:
        self._worker.shutdown()
        self._final_worker.shutdown()
