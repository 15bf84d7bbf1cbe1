"""The faults of `voxloop bench faults`, one per clip, and when each one acted.

Each kind is armed so that it meets the request (or the stream) the conversation needs next: the
recogniser's 1 s into the speech, the others as the clip's speech ends (so they meet the reply to
its last turn, not one to a pause the user then talks through); and so that no result of the
stage can come through the faulted connection after it acted: then "the
stage works again" is simply its next result (bench/observe.py), and recovery runs from the
moment the fault acted to that result.

    stt_drop       the recogniser's socket closed just before its next result passes (mid-speech)
    stt_stall      its socket stalled both ways, from just before its next result (mid-speech)
    llm_5xx        the next chat request answered 503
    llm_429        the next chat request answered 429 with Retry-After: 1
    llm_stall      the next chat request's reply held (the request itself goes through)
    tts_stall      the next speech request's audio held (a request: REQUEST_BYTES up, more than the
                   pings (10 bytes every `keepalive_s`) and close frames (8) of the voice's idle
                   sockets: after 1 byte, a ping or a close met the fault instead and the stage
                   "recovered" 22 ms later having held nothing, or from a ping before the request)
    tts_drop       the speech socket closed just before its first audio passes
    provider_down  the chat endpoint resets its connections and refuses new ones for the clip:
                   the fallback (the local model) answers; it acted at the next chat request

A stall lasts `STALL_S`, longer than every deadline: only the provider's own recovery ends it.
"""

from __future__ import annotations

from voxloop.bench.faultproxy import Fault
from voxloop.bench.faultrig import Rig
from voxloop.bench.scripted import Rule

KINDS = (
    "stt_drop",
    "stt_stall",
    "llm_5xx",
    "llm_stall",
    "llm_429",
    "tts_stall",
    "tts_drop",
    "provider_down",
)
STAGE = {k: k.split("_")[0] for k in KINDS} | {"provider_down": "llm"}
STALL_S = 10.0
MID_SPEECH_S = 1.0  # the recogniser's faults, this long after the speech onset
REQUEST_BYTES = 48  # < the Speak and Flush frames of the shortest text (61 bytes for "Hi.")
CHAT = "/v1/chat/completions"


class Injection:
    """One fault on one clip: `arm()` (`at_s` after the speech onset for the recogniser's kinds,
    else as the speech ends), `acted_at()` (loop time; None: it never met a request), `undo()` once
    the clip is over."""

    def __init__(self, kind: str, rig: Rig) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        self.kind, self.rig, self.stage = kind, rig, STAGE[kind]
        self.mid_speech = self.stage == "stt"
        self.at_s = MID_SPEECH_S if self.mid_speech else 0.0  # after the onset; else the speech's end
        self.fault: Fault | None = None
        self.rule: Rule | None = None
        self.armed_at: float | None = None

    def arm(self) -> None:
        r, k = self.rig, self.kind
        self.armed_at = r.log.now()
        if k == "stt_drop":
            self.fault = r.stt.inject(Fault("drop", on_response=True, before=True, scope="first"))
        elif k == "stt_stall":
            self.fault = r.stt.inject(
                Fault("stall", "both", STALL_S, on_response=True, before=True, scope="first")
            )
        elif k == "llm_5xx":
            self.rule = r.scripted.fail(CHAT, 503, message="scripted: the model is overloaded")
        elif k == "llm_429":
            self.rule = r.scripted.fail(CHAT, 429, retry_after=1.0, message="scripted: slow down")
        elif k in ("llm_stall", "tts_stall"):
            proxy, request = (r.llm, 1) if k == "llm_stall" else (r.tts, REQUEST_BYTES)
            self.fault = proxy.inject(
                Fault("stall", "down", STALL_S, after_bytes=request, watch="up", scope="first")
            )
        elif k == "tts_drop":
            self.fault = r.tts.inject(Fault("drop", on_response=True, before=True, scope="first"))
        else:  # provider_down
            r.llm.refuse("reset")
            r.llm.inject(Fault("reset"))

    def acted_at(self) -> float | None:
        if self.fault is not None:
            return self.fault.fired_at
        if self.rule is not None:
            return self.rule.answered_at[0] if self.rule.answered_at else None
        if self.armed_at is None:
            return None
        return self.rig.log.first_after("llm_request", self.armed_at)

    def recovery_s(self) -> float | None:
        """From the moment it acted to the stage's next result (None: it never acted, or the stage
        gave nothing since)."""
        t = self.acted_at()
        ok = None if t is None else self.rig.log.first_after(self.stage, t)
        return None if t is None or ok is None else ok - t

    def waited_s(self) -> float | None:
        """Of the recovery, how long the stage was not asked: from the fault acting to the start
        of the request that gave the next result (0: that request was out when it acted, e.g. the
        faulted one itself; None: not known, or no request notes for the stage). A faulted request
        that was given up (the user talked over the reply) leaves the stage idle until the next
        one; this tells that wait from the stage's own time."""
        t, took = self.acted_at(), self.recovery_s()
        if t is None or took is None or self.stage == "stt":
            return None
        began = [x for x in self.rig.log.times[f"{self.stage}_request"] if x <= t + took]
        return max(0.0, began[-1] - t) if began else None

    async def undo(self) -> None:
        self.rig.release()
        await self.rig.llm.admit()
