"""The selectable models: Whisper base (joined from two packages) and SmolLM2-135M."""

from __future__ import annotations

from typing import Any

import pytest

from voxloop.config import LLMConfig, STTConfig
from voxloop.providers.base import Message
from voxloop.providers.llm.llama import LlamaLLM
from voxloop.providers.stt.whisper import WhisperSTT

from .conftest import LAMP, Arun, Corpus, load_or_skip
from .helpers import missing_words

pytestmark = pytest.mark.integration


def test_whisper_base_transcribes_batch_and_streaming(arun: Arun[Any], corpus: Corpus) -> None:
    stt = load_or_skip(arun, WhisperSTT(STTConfig(model="base", threads=2)))
    try:
        audio = corpus.audio(LAMP)
        batch = arun(stt.transcribe(audio)).text
        assert not missing_words(batch, ["turn", "on", "living", "room", "lamp"]), batch
        assert not missing_words(arun(stt.decode_async(audio)), ["living", "room", "lamp"])
    finally:
        arun(stt.aclose())


def test_smollm2_streams_a_reply(arun: Arun[Any]) -> None:
    llm = load_or_skip(arun, LlamaLLM(LLMConfig(model="smollm2-135m", max_tokens=24)))

    async def reply() -> list[str]:
        msgs = [Message("system", "You are a helpful assistant."), Message("user", "Say hello to Ada.")]
        return [p async for p in llm.stream(msgs)]

    try:
        pieces = arun(reply())
        assert len(pieces) >= 2 and "".join(pieces).strip(), pieces
        assert "<|im_end|>" not in "".join(pieces)
    finally:
        arun(llm.aclose())
