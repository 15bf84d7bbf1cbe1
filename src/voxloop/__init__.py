"""voxloop: a real-time voice agent. Streaming STT -> LLM -> TTS, fully offline by default.

from voxloop import AgentConfig, Providers, VoiceSession
"""

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
