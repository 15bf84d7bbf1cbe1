"""voxloop: a real-time voice agent. Streaming STT -> LLM -> TTS, fully offline by default.

from voxloop import AgentConfig, Providers, VoiceSession
"""

import os

# Before any library that uses OpenMP is loaded (llama.cpp, CTranslate2 read it once, at load):
# their threads spin only briefly at a barrier, then sleep. A thread that spins while the thread
# it waits for has been descheduled burns the very core that thread needs: with another process
# busy, 2 llama.cpp threads took 8.3 s to a first token and 3.4 s per token with libgomp's default
# spinning, 0.52 s and 0.15 s with a spin count of 1000; idle, 0.27 s / 90 ms (0.25 s / 80 ms
# spinning; 0.32 s / 110 ms never spinning). `benchmarks/under_load.py`, Qwen 1.5B, 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from voxloop.agent.events import Event
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.agent.timeline import TurnRecord
from voxloop.config import AgentConfig, LLMConfig, STTConfig, TTSConfig, TurnConfig, VADConfig
from voxloop.errors import (
    AudioFormatError,
    MissingExtra,
    ModelMissing,
    ProviderError,
    UnknownProvider,
    VoxloopError,
)
from voxloop.providers.base import LLM, STT, TTS, VAD, Message, STTStream, Transcript, VADStream
from voxloop.transports.base import AudioSink

__version__ = "0.1.0"
__all__ = [
    "LLM",
    "STT",
    "TTS",
    "VAD",
    "AgentConfig",
    "AudioFormatError",
    "AudioSink",
    "Event",
    "LLMConfig",
    "Message",
    "MissingExtra",
    "ModelMissing",
    "ProviderError",
    "Providers",
    "STTConfig",
    "STTStream",
    "TTSConfig",
    "Transcript",
    "TurnConfig",
    "TurnRecord",
    "UnknownProvider",
    "VADConfig",
    "VADStream",
    "VoiceSession",
    "VoxloopError",
    "__version__",
]
