"""Scriptable, thread-free fakes of the four provider contracts (voxloop.providers.base)."""

from fakes.fake_llm import FakeLLM, LLMCall
from fakes.fake_stt import FakeSTT, FakeSTTStream
from fakes.fake_tts import FakeTTS
from fakes.fake_vad import FakeVAD, FakeVADStream

__all__ = ["FakeLLM", "FakeSTT", "FakeSTTStream", "FakeTTS", "FakeVAD", "FakeVADStream", "LLMCall"]
