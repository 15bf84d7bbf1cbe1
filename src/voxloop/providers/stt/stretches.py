"""A long turn's committed pieces heard again in stretches, while the user speaks.

Whisper hears a long stretch in its full 30 s window better than the same speech in pieces
decoded in short windows (long turns, the loop decoder, 3 passes, errors tuning / validation: 20 s
pieces in short windows 277 / 140, the turn in 30 s stretches 248 / 112). So once a turn has a
committed piece, `Stretches` hears its committed pieces again as one stretch (those within
`STRETCH_MAX_S` of audio), in the background:

- one stretch at a time: pieces committed while one runs are taken in by the next, begun when it
  is done; its steps run only while the user speaks (`speaking`): a pause leaves the cores to the
  pause decode and the reply, and the turn's end drops what is under way;
- a stretch done and clean stands in for its pieces (`heard`), taken only while the user speaks
  (one done in a pause waits for them to go on: taken there it would change the words the reply
  is begun on), and keeping the pieces' spelling where it hears the same words (`kept_spelling`);
  one that holds fewer than 80% of its pieces' words is not taken.

Tried and not kept: committing pieces at shorter pauses once a stretch hears them (4 s or 8 s,
later runs of pieces past 29 s heard as stretches of their own; branch `stretch-pieces`). The
turn's last piece is shorter and its reply sooner, but a short piece that no clean stretch hears
again hears worse: long turns, 5 passes, validation errors 206 -> 215-223. Nor a stretch that
also hears 4 s of the speech after its pieces, so their last words are heard in context (branch
`lead`): long turns 428 / 206 -> 418 / 202 errors, but it lands nearer the turn's end and the
language model reads again there: long turns' v2v p50 +0.36 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from voxloop.providers.base import Samples
from voxloop.providers.stt.decoding import Decoding, joined, kept_spelling

log = logging.getLogger("voxloop.stt")
STRETCH_MAX_S = 29.0  # the most audio heard again as one stretch (with its silence after: < 30 s)


@runtime_checkable
class StretchDecoder(Protocol):
    """A decoder that can hear a long turn's committed pieces again as one stretch, in the
    background (Whisper: in its full 30 s window), in steps, awaiting `go()` before each; None
    when it will not now (a busy machine) or the stretch was not a clean hearing."""

    async def decode_stretch_async(
        self, audio: Samples, context: str, go: Callable[[], Awaitable[object]]
    ) -> Decoding | None: ...


class Stretches:
    """The stretches of one turn (see the module). The stream tells it where pieces end
    (`committed`), asks for the pieces' text as heard (`heard`), and resets it with the turn."""

    def __init__(
        self,
        stt: StretchDecoder,
        rate: int,
        speaking: asyncio.Event,
        audio: Callable[[], Samples],
        context: Callable[[], str],
        on_adopted: Callable[[], None],
    ) -> None:
        self._stt, self._rate, self._speaking = stt, rate, speaking
        self._audio = audio  # the turn's audio so far
        self._context = context  # the words before the turn, as context for a decode
        self._on_adopted = on_adopted  # a stretch's text now stands in for its pieces
        self._ends: list[int] = []
        # the last stretch begun: (how many pieces it hears, its decode)
        self._run: tuple[int, asyncio.Task[Decoding | None]] | None = None
        self._adopted: tuple[int, Decoding] | None = None  # the last one done and clean, taken
        self._waiting: tuple[int, Decoding] | None = None  # ... done in a pause: not yet taken

    def committed(self, end: int) -> None:
        """A piece was committed, ending at sample `end`: heard again once the stretch under way
        (if any) is done."""
        self._ends.append(end)
        self._hear()

    def _hear(self) -> None:
        if self._run is not None and not self._run[1].done():
            return  # one at a time: when it is done, the next takes in what was committed meanwhile
        n = sum(1 for e in self._ends if e <= STRETCH_MAX_S * self._rate)
        if n <= (self._run[0] if self._run is not None else 0):
            return  # no piece since the last stretch, or none within one
        audio = self._audio()[: self._ends[n - 1]]
        task = asyncio.get_running_loop().create_task(
            self._stt.decode_stretch_async(audio, self._context(), self._speaking.wait)
        )
        run = (n, task)
        self._run = run
        task.add_done_callback(lambda _: self._done(run))

    def _done(self, run: tuple[int, asyncio.Task[Decoding | None]]) -> None:
        n, task = run
        if task.cancelled() or run is not self._run:
            return  # the turn is over
        try:
            whole = task.result()
        except Exception as e:  # noqa: BLE001 - a stretch is an improvement, never a requirement
            log.warning("hearing a long turn's pieces again failed (%s); the pieces stand", e)
            whole = None
        if whole is not None:
            log.debug("the first %d pieces heard again as one stretch: %r", n, whole.text)
            if self._speaking.is_set():
                self._adopt((n, whole))
            else:
                self._waiting = (n, whole)  # its last step ended in a pause
        self._hear()  # the pieces committed while it ran

    def _adopt(self, stretch: tuple[int, Decoding]) -> None:
        self._adopted, self._waiting = stretch, None
        self._on_adopted()

    def resumed(self) -> None:
        """The user speaks again: a stretch done in the pause is taken now."""
        if self._waiting is not None:
            self._adopt(self._waiting)

    def heard(self, pieces: Sequence[Decoding]) -> Decoding:
        """`pieces` (the first committed pieces, as decoded one by one) joined, the first of them
        as heard again in one stretch where that holds about as many words as they do."""
        if self._adopted is None or self._adopted[0] > len(pieces):
            return joined(pieces)
        n, whole = self._adopted
        first = joined(pieces[:n])
        if len(whole.text.split()) < 0.8 * len(first.text.split()):
            return joined(pieces)
        return joined([kept_spelling(first, whole), *pieces[n:]])

    async def settle(self) -> None:
        """The stretch under way, done (unless the user has paused, when it waits)."""
        if self._run is not None and self._speaking.is_set():
            await asyncio.gather(self._run[1], return_exceptions=True)

    def reset(self) -> None:
        """The turn is over: what is under way is dropped."""
        if self._run is not None:
            self._run[1].cancel()
        self._ends, self._run, self._adopted, self._waiting = [], None, None, None

    def task(self) -> asyncio.Task[Decoding | None] | None:
        return self._run[1] if self._run is not None else None
