"""voxloop: a real-time voice agent. Streaming STT -> LLM -> TTS, fully offline by default.

from voxloop import AgentConfig, Providers, VoiceSession
"""

import os

# Before any library that uses OpenMP is loaded (llama.cpp reads it once, when it loads): a thread
# waiting at a barrier spins 10000 times, then sleeps (GNU OpenMP's default is 300000). A thread
# that keeps spinning while the thread it waits for has been descheduled burns the very core that
# thread needs: with one other busy process on 2 cores, 2 llama.cpp threads ran 3.4 s per token
# instead of 0.27 s; with nothing else running they run as fast as with the long spin, where
# sleeping at once (OMP_WAIT_POLICY=PASSIVE) cost 40% (`benchmarks/under_load.py`). A wait policy
# or spin count set by the user is left alone.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

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
from voxloop.redact import redact
from voxloop.tools import Toolbox, Transfer, tool
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
    "Toolbox",
    "Transfer",
    "Transcript",
    "TurnConfig",
    "TurnRecord",
    "UnknownProvider",
    "VADConfig",
    "VADStream",
    "VoiceSession",
    "VoxloopError",
    "__version__",
    "tool",
    "redact",
]
