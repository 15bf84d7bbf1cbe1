"""What the app shares between requests: the models and whether they are loaded, the live sessions,
and the `max_sessions` slots every session and model-running request holds while it runs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig
from voxloop.metrics.serving import SessionObserver
from voxloop.server import protocol as p
from voxloop.server.admission import Admission
from voxloop.server.drain import GOODBYE, Sessions
from voxloop.server.settings import ServerSettings

log = logging.getLogger("voxloop.server")


@dataclass(frozen=True)
class Refusal:
    """Why a voice session is not taken now: an error code (protocol.py), in words, and the
    WebSocket close code (1012: connect again elsewhere; 1013: try again later)."""

    code: str
    message: str
    close: int


class ServerState:
    """What the app shares between requests: the models, whether they are loaded, the sessions."""

    def __init__(self, providers: Providers, config: AgentConfig, settings: ServerSettings) -> None:
        self.providers, self.config, self.settings = providers, config, settings
        self.ready = asyncio.Event()  # the models are loaded
        self.settled = asyncio.Event()  # loading finished, one way or the other
        self.load_error: Exception | None = None
        self.active = 0  # sessions open now
        self.sessions = Sessions()  # the live voice sessions, drained on SIGTERM (drain.py)
        self.observers: list[SessionObserver] = []  # made for each session: metrics, log ids
        self.admission = Admission(settings.max_sessions, settings.latency_budget_ms)

    def observe(self, event: ev.Event) -> None:
        """Every session's events: finished turns teach admission control the load it can serve."""
        if isinstance(event, ev.TurnCompleted):
            self.admission.note_turn(event.record, self.active)

    async def load(self) -> None:
        try:
            await self.providers.load()
        except Exception as e:
            self.load_error = e
            log.error("the models could not be loaded: %s", e)
        else:
            self.ready.set()
        finally:
            self.settled.set()

    def refusal(self) -> Refusal | None:
        """Why a new voice session would be refused now (None: it would be taken): the server is
        draining, the models are loading, or admission control says no (admission.py)."""
        if self.sessions.draining:
            return Refusal(p.SHUTTING_DOWN, GOODBYE, p.CLOSE_RESTART)
        if not self.ready.is_set():
            return Refusal(p.NOT_READY, "the models are still loading: try again shortly", p.CLOSE_TRY_LATER)
        if not (admitted := self.admission.decide(self.active)).admit:
            return Refusal(p.SERVER_BUSY, admitted.reason, p.CLOSE_TRY_LATER)
        return None

    def take_slot(self) -> Slot:
        """One of the `max_sessions` slots, held until released (whether one is free is for the
        caller to check first)."""
        return Slot(self)


class Slot:
    """A slot of `ServerState.active`, taken when made; `release` frees it once, however often it
    is called (a session's end and its route's `finally` both call it). Also a context manager."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._held = True
        state.active += 1

    def release(self) -> None:
        if self._held:
            self._held = False
            self._state.active -= 1

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
