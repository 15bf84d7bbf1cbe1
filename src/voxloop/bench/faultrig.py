"""The rig of `voxloop bench faults`: a local voxloop server, fault injectors in front of it, and
the cloud providers of a session pointed at them, with the local stack as their fallback.

    session ── DeepgramSTT ──► FaultProxy "stt" ─┐
            ── OpenAILLM ────► FaultProxy "llm" ─┼─► ScriptedFaults ─► voxloop's app (real models)
            ── DeepgramTTS ──► FaultProxy "tts" ─┘    (5xx, 429, 4xx)   /v1/listen, /v1/speak,
                                                                      /v1/chat/completions

The server's loaded models are also the last member of each fallback chain (`deepgram,whisper`,
`openai,llama`, `deepgram,hibari`): one copy of each model serves both sides. Each stage's
results are noted in `Rig.log` (bench/observe.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from voxloop.agent.providers import Providers
from voxloop.bench.faultproxy import FaultProxy
from voxloop.bench.observe import StageLog, observed
from voxloop.bench.scripted import ScriptedFaults
from voxloop.config import AgentConfig
from voxloop.errors import VoxloopError
from voxloop.providers.fallback import Chain, FallbackLLM, FallbackTTS
from voxloop.providers.fallback_stt import FallbackSTT
from voxloop.providers.registry import names, provider_class
from voxloop.server.app import create_app, server_state
from voxloop.server.run import bind, uvicorn_server
from voxloop.server.settings import ServerSettings

log = logging.getLogger("voxloop.bench")
CLOUD = {"deepgram", "openai"}
LOCAL_DEFAULT = {"stt": "whisper", "llm": "llama", "tts": "hibari"}
READY_S = 600.0  # loading the models on a cold, busy machine


@dataclass
class Rig:
    providers: Providers  # the session's: cloud chains through the proxies, observed
    log: StageLog
    scripted: ScriptedFaults
    stt: FaultProxy
    llm: FaultProxy
    tts: FaultProxy
    chains: tuple[Chain[Any], ...] = ()

    def down(self) -> list[str]:
        """The chain members that are down now, as "stage provider"."""
        return [f"{c.stage} {name}" for c in self.chains for name, st in c.state().items() if st == "down"]

    async def settle(self, within_s: float = 30.0) -> float:
        """Wait (a probe of the chain's own brings a member back) until every member is up again, or
        `within_s`; the seconds waited."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(int(within_s / 0.1)):
            if not self.down():
                break
            await asyncio.sleep(0.1)  # polled: a chain tells of a recovery only as an incident
        return loop.time() - t0

    def release(self) -> None:
        """Every fault not yet over ends, and the connections they acted on are closed
        (refusals are lifted by `admit`)."""
        self.scripted.clear()
        for proxy in (self.stt, self.llm, self.tts):
            proxy.release()
            proxy.close_faulted()


def local_config(config: AgentConfig) -> AgentConfig:
    """`config` with the local member of each stage (the named one, else the default)."""
    cfg = copy.deepcopy(config)
    for kind, stage in (("stt", cfg.stt), ("llm", cfg.llm), ("tts", cfg.tts)):
        local = [n for n in names(kind, stage.provider) if n not in CLOUD]
        stage.provider = local[-1] if local else LOCAL_DEFAULT[kind]
    if cfg.tts.provider != "piper":
        cfg.tts.voice = "heart"
    return cfg


def cloud_config(config: AgentConfig, stt: str, llm: str, tts: str) -> AgentConfig:
    """The cloud providers' settings: each pointed at its proxy, with a key the server ignores."""
    cfg = copy.deepcopy(config)
    cfg.stt.deepgram = dataclasses.replace(cfg.stt.deepgram, base_url=stt, api_key="local")
    cfg.tts.deepgram = dataclasses.replace(cfg.tts.deepgram, base_url=tts, api_key="local")
    cfg.llm.openai = dataclasses.replace(cfg.llm.openai, base_url=f"{llm}/v1", api_key="local")
    return cfg


@contextlib.asynccontextmanager
async def serving(local: Providers, config: AgentConfig) -> AsyncIterator[tuple[int, ScriptedFaults]]:
    """voxloop's app behind `ScriptedFaults` on uvicorn, on a free loopback port, once ready."""
    settings = ServerSettings(port=0)
    app = create_app(local, config, settings)
    scripted = ScriptedFaults(app)
    sock = bind("127.0.0.1", 0)
    server = uvicorn_server(scripted, settings)
    loop = asyncio.get_running_loop()
    task = loop.create_task(server.serve(sockets=[sock]))
    state = server_state(app)
    ready = loop.create_task(state.settled.wait())
    try:
        await asyncio.wait({ready, task}, timeout=READY_S, return_when=asyncio.FIRST_COMPLETED)
        if not state.ready.is_set():
            raise VoxloopError(f"the local server did not get ready: {state.load_error or 'timed out'}")
        yield sock.getsockname()[1], scripted
    finally:
        ready.cancel()
        server.should_exit = True
        await asyncio.gather(ready, task, return_exceptions=True)
        sock.close()


@contextlib.asynccontextmanager
async def rig(config: AgentConfig) -> AsyncIterator[Rig]:
    """The whole rig; the models are loaded (by the server) before it is yielded."""
    local_cfg = local_config(config)
    local = Providers.from_config(local_cfg)
    chains: list[FallbackSTT | FallbackLLM | FallbackTTS] = []
    try:
        async with (
            serving(local, local_cfg) as (port, scripted),
            FaultProxy(("127.0.0.1", port)) as stt_p,
            FaultProxy(("127.0.0.1", port)) as llm_p,
            FaultProxy(("127.0.0.1", port)) as tts_p,
        ):
            cloud = cloud_config(local_cfg, stt_p.url(), llm_p.url(), tts_p.url())
            stt = FallbackSTT([provider_class("stt", "deepgram")(cloud.stt), local.stt], config.fallback)
            llm = FallbackLLM([provider_class("llm", "openai")(cloud.llm), local.llm], config.fallback)
            tts = FallbackTTS([provider_class("tts", "deepgram")(cloud.tts), local.tts], config.fallback)
            chains += [stt, llm, tts]
            for chain in chains:
                await chain.load()
            stage_log = StageLog()
            session = observed(Providers(local.vad, stt, llm, tts), stage_log)
            yield Rig(session, stage_log, scripted, stt_p, llm_p, tts_p, (stt.chain, llm.chain, tts.chain))
    finally:
        for chain in chains:  # each closes its members, the local models among them
            await chain.aclose()
        if not chains:
            await local.aclose()
        else:
            await local.vad.aclose()
