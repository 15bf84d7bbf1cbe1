"""Deepgram Nova-3 streaming recognition over its WebSocket (`--stt deepgram`).

One socket per stream (one per session), opened at the first audio and kept between turns with
`KeepAlive`. The turn's audio goes out as binary linear16; at the turn's end `Finalize` makes
Deepgram finish it (a final `Results` with `from_finalize`); the turn's text is its final
results joined. Interim results, with the turn's finals before them, are the partials.

Recovery (each shown by a test in tests/unit/test_deepgram_stt.py):
- every sample pushed stays in a buffer until a final result covers it (results carry the
  audio's time); a socket that drops is reopened with back-off (`deepgram_net.with_retries`:
  bounded, jittered, Retry-After on 429) and the buffer is sent again from the last confirmed
  sample, so no word is lost;
- a send that blocks past `send_timeout_s` and a handshake past `connect_timeout_s` count as a
  drop; the library's pings close a socket whose peer went silent;
- speech sent and no message back for `stall_timeout_s` (the user speaking, not paused, no
  Finalize out yet) counts as a drop too: the stall is found mid-speech (deepgram_link.py);
  at `stall_hedge_after_s` already, a second socket replays the unconfirmed audio and races the
  first, the first to answer serving (deepgram_race.py, tests/unit/test_deepgram_hedge.py);
- no final within `final_hedge_after_s` of Finalize: a second socket replays the turn's
  unconfirmed audio with its own Finalize and races the first, the first to answer serving (the
  hedge of deepgram_race.py, once a turn), so a socket stalled at the turn's end costs that wait;
- no result within `final_timeout_s` of Finalize (or of the socket's last result: a socket still
  answering a replay is not stalled; with a hedge racing, of the hedge's Finalize: both are kept
  till then): the socket is taken as stalled and reopened (a racing hedge takes over) and the turn
  replayed once; still none: the finals so far and the last interim
  result are the turn's text (no text at all: the error is raised);
- `finalize` cancelled (the user went on before the reply began): the turn goes on, its finals
  and unconfirmed audio kept for the next final (a stalled socket's turn is not dropped);
- after the retries, the failure is raised from `finalize` (never from `push`: the listener's
  audio path does not fail), and the next turn starts with a fresh retry budget.

Results are placed in the stream's time by the socket they came on (`origin`: the sample its
audio began at); results that end before the last finished turn's audio did are late and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence

from voxloop.audio.pcm import to_int16
from voxloop.config import STTConfig
from voxloop.errors import ProviderError
from voxloop.providers.base import STT, PartialCallback, Samples, STTCapabilities, STTStream, Transcript
from voxloop.providers.deepgram_net import PROVIDER, DeepgramClient
from voxloop.providers.recovery import Incident, report
from voxloop.providers.stt.deepgram_link import Link
from voxloop.providers.stt.deepgram_wire import Results

log = logging.getLogger("voxloop.stt.deepgram")


class DeepgramSTT(DeepgramClient, STT):
    name = "deepgram"
    sample_rate = 16000
    capabilities = STTCapabilities(streaming=True, interim_results=True)

    def __init__(self, config: STTConfig | None = None) -> None:
        self.config = config or STTConfig()
        self.dg = self.config.deepgram
        # what recovery did, for benchmarks and tests: reconnect, replay, replayed_s, retry,
        # retry_<category>, stall, interim_fallback, gave_up, keepalive
        self.counters: Counter[str] = Counter()

    async def load(self) -> None:
        """Checks the URL and the key; connects nothing (each stream opens its own socket)."""
        _ = self.endpoint

    def stream(self, on_partial: PartialCallback | None = None) -> DeepgramStream:
        return DeepgramStream(self, on_partial)


class DeepgramStream(STTStream):
    """One session's recognition: `push` never waits for the network, `finalize` waits at most
    for the deadlines above."""

    def __init__(self, stt: DeepgramSTT, on_partial: PartialCallback | None) -> None:
        self.rate, self.cfg, self.counters = stt.sample_rate, stt.dg, stt.counters
        self.link = Link(stt.endpoint, stt.dg, stt.sample_rate, stt.counters, self._on_results)
        self.link.terms = list(stt.config.keywords)
        self.link.has_fallback = stt.has_fallback
        self._on_partial = on_partial
        self._finals: list[str] = []  # this turn's final results
        self._interim = ""  # the latest interim result since the last final
        self._want: int | None = None  # Finalize asked for: the turn's audio ends at this sample
        self._done = False  # ... and a final result covering it came
        self._floor = 0  # results ending at or before this sample belong to finished turns
        self._later: list[tuple[Results, int]] = []  # results of the next turn, while one is collected
        self._heard_at = 0.0  # loop time of this turn's last result

    # -- STTStream -------------------------------------------------------------------------------
    async def push(self, audio: Samples) -> None:
        self.link.append(to_int16(audio).tobytes())

    def speech_paused(self) -> None:
        self.link.quiet = True  # no answer is due for silence: the stall clock stops

    def speech_resumed(self) -> None:
        self.link.quiet = False

    def keywords(self, words: Sequence[str]) -> None:
        """Keyterms for this stream (with the configured ones), from its next connection on."""
        terms = [*self.link.terms, *(w.strip() for w in words)]
        self.link.terms = list(dict.fromkeys(t for t in terms if t))

    async def finalize(self) -> Transcript:
        mark, ended = self.link.pushed, True
        try:
            if self.link.confirmed < mark:  # audio no final covers yet
                self._want, self._done = mark, False
                self.link.request_finalize(mark)
                await self._await_final()
            return self._turn_text(mark)
        except asyncio.CancelledError:
            ended = False  # the user went on before the reply began: the turn goes on
            raise
        finally:
            if ended:
                self._next_turn(mark)
            else:
                self._goes_on()

    async def aclose(self) -> None:
        await self.link.shutdown()

    # -- the turn's end ----------------------------------------------------------------------------
    async def _await_final(self) -> None:
        """Until a final covers the turn, the link gives up, or the deadlines pass (the turn is
        hedged, then replayed once on a new socket, then the final is given up on)."""
        loop = asyncio.get_running_loop()
        cfg, link = self.cfg, self.link
        give_up_at = loop.time() + 3 * cfg.final_timeout_s + cfg.connect_timeout_s
        replays, hedge = 1, 0 < cfg.final_hedge_after_s < cfg.final_timeout_s
        while not self._done and link.error is None:
            now = loop.time()
            sent_at = link.finalize_sent_at
            until = give_up_at
            if sent_at is not None:
                until = max(sent_at, self._heard_at) + cfg.final_timeout_s
                racing = link.race.hedge
                if racing is not None and racing.finalize_sent_at is not None:  # both kept till its own
                    until = max(until, racing.finalize_sent_at + cfg.final_timeout_s)
                until = min(until, give_up_at)
                if hedge and now >= sent_at + cfg.final_hedge_after_s:
                    hedge = False
                    link.race.hedge_final()
                elif hedge:
                    until = min(until, sent_at + cfg.final_hedge_after_s)
            if now >= until:
                if sent_at is None or replays == 0 or now >= give_up_at:
                    return
                replays -= 1
                self.counters["stall"] += 1
                link.recycle(f"no final result within {cfg.final_timeout_s:g} s of Finalize")
                report(Incident("retry", "stt", PROVIDER, "timeout", "no final result: replaying the turn"))
                link.finalize_sent_at = None  # re-sent on the new socket
                continue
            link.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.changed.wait(), until - now)

    def _turn_text(self, mark: int) -> Transcript:
        """The turn's finals; when none covered its end: the link's error if it gave up (a fallback
        chain hears the turn again), else the finals and the last interim result."""
        audio_s = mark / self.rate
        if self._done:
            return Transcript(_join(self._finals), True, audio_s)
        if self.link.error is not None:
            raise self.link.error
        text = _join([*self._finals, self._interim])
        why = f"Deepgram stt: no final result within {self.cfg.final_timeout_s:g} s of Finalize"
        if not text:
            raise _reported(ProviderError(why, category="timeout", provider=PROVIDER))
        self.counters["interim_fallback"] += 1
        report(
            Incident(
                "error", "stt", PROVIDER, "timeout", f"{why}: the last interim result is the turn's text"
            )
        )
        return Transcript(text, True, audio_s)

    def _next_turn(self, mark: int) -> None:
        if not self._done and self._want is not None:  # a socket that gave no final is not trusted
            self.link.recycle("the last turn got no final result")
        self._finals, self._interim, self._want, self._done = [], "", None, False
        self._floor = max(self._floor, mark)
        self.link.end_turn(mark)
        later, self._later = self._later, []
        for results, origin in later:
            self._on_results(results, origin)

    def _goes_on(self) -> None:
        """`finalize` was cancelled (the listener's turn was taken back: the user went on before
        the reply began). Like the local recognisers, nothing of the turn is dropped: its finals and
        the audio no final covers stay, and join the next final (its words are heard nowhere else)."""
        self._want, self._done = None, False
        self.link.end_turn(self.link.confirmed)  # no Finalize owed; the stall clocks run again
        later, self._later = self._later, []
        for results, origin in later:
            self._on_results(results, origin)

    # -- results (the link hands on every Results, with the sample its socket began at) ----------
    def _on_results(self, r: Results, origin: int) -> None:
        end = origin + round(r.end * self.rate)
        if end <= self._floor + self.rate // 50:
            return  # late: a finished turn's
        if self._done:
            self._later.append((r, origin))  # the next turn's, while this one is being collected
            return
        self._heard_at = asyncio.get_running_loop().time()
        if r.is_final:
            if r.text:
                self._finals.append(r.text)
            self._interim = ""
            self.link.confirm(end)
            if self._want is not None and (r.from_finalize or end >= self._want - self.rate // 10):
                self._done = True
        else:
            self._interim = r.text
        self.link.changed.set()
        text = _join([*self._finals, self._interim])
        if self._on_partial is not None and text and not self._done:
            self._on_partial(Transcript(text, False, end / self.rate))


def _reported(e: ProviderError) -> ProviderError:
    report(Incident("error", "stt", PROVIDER, e.category, e.message))
    e.reported = True
    return e


def _join(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t.strip())
