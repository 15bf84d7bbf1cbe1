"""What each CLI command does, as plain async functions (the CLI only parses arguments)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.wav import read_wav, write_wav
from voxloop.config import AgentConfig, TTSConfig
from voxloop.errors import MissingExtra, VoxloopError
from voxloop.metrics.standalone import observed
from voxloop.providers.registry import provider_class
from voxloop.server.settings import ServerSettings
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput, write_outputs

log = logging.getLogger("voxloop")


async def demo(out_dir: Path, config: AgentConfig) -> None:
    from voxloop.demo import run_demo

    await run_demo(out_dir, config)


async def run_wav(
    inp: Path, out_dir: Path, config: AgentConfig, tail_s: float = 30.0, metrics_port: int | None = None
) -> VoiceSession:
    audio, rate = read_wav(inp)
    providers = Providers.from_config(config)
    await providers.load()
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config)
    mic = PacedInput(session, rate)
    try:
        async with observed(session, providers, metrics_port):
            log.info("feeding %s (%.1f s) at real-time pace", inp, len(audio) / rate)
            await mic.feed(audio)
            await mic.silence_until(lambda: session.idle and not sink.busy(), max_s=tail_s)
            print(write_outputs(out_dir, session, mic, sink))
    finally:
        await session.aclose()
        await providers.aclose()
    return session


async def talk(config: AgentConfig, metrics_port: int | None = None) -> None:
    from voxloop.transports.device import Microphone, SpeakerSink, check_devices

    check_devices()  # before loading models: say at once if there is no microphone or speaker
    providers = Providers.from_config(config)
    await providers.load()
    sink = SpeakerSink(providers.tts.sample_rate)
    mic = Microphone()
    session = VoiceSession(providers, sink, config)
    print("Listening. Speak to the agent; Ctrl+C to stop.")
    try:
        async with observed(session, providers, metrics_port):
            while True:
                frame = await mic.frames.get()
                await session.push_audio(frame, mic.rate)
    finally:
        mic.close()
        sink.close()
        await session.aclose()
        await providers.aclose()


async def serve(
    config: AgentConfig, settings: ServerSettings, ssl_certfile: str = "", ssl_keyfile: str = ""
) -> None:
    try:
        from voxloop.server.run import serve as serve_forever
    except ImportError as e:
        if e.name in ("starlette", "uvicorn", "websockets"):
            raise MissingExtra("server", e.name) from None
        raise
    # the local model keeps a cached prompt for every conversation the server takes at once
    config.llm.slots = max(config.llm.slots, settings.max_sessions)
    await serve_forever(config, settings, ssl_certfile, ssl_keyfile)


async def say(text: str, out: Path, config: TTSConfig) -> tuple[Path, float]:
    if not text.strip():
        raise VoxloopError("nothing to say", 'give some text: voxloop say "Hello there." -o hello.wav')
    tts = provider_class("tts", config.provider)(config)
    await tts.load()
    try:
        parts = [a async for a in tts.synthesize(text)]
    finally:
        await tts.aclose()
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return write_wav(out, audio, tts.sample_rate), len(audio) / tts.sample_rate


def models(prepare: bool) -> str:
    from voxloop.models import MODELS, model_path

    rows = []
    for name, spec in MODELS.items():
        try:
            where = (
                str(model_path(name, progress=True))
                if prepare or spec.file
                else "installed (prepared on first use)"
            )
        except VoxloopError as e:
            where = f"MISSING: {e.hint}"
        rows.append(f"{spec.kind:4s} {name:14s} {spec.size:>7s}  {spec.licence}\n     {where}")
    return "\n".join(rows)
