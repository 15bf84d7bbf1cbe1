from __future__ import annotations

import pytest

from voxloop.config import AgentConfig
from voxloop.errors import MissingExtra, UnknownProvider, VoxloopError
from voxloop.providers import registry
from voxloop.providers._imports import require


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(UnknownProvider) as e:
        registry.provider_class("mixer", "x")
    assert "mixer" in e.value.message
    assert e.value.hint == "kinds: vad, stt, llm, tts"


def test_unknown_name_lists_the_available_names() -> None:
    with pytest.raises(UnknownProvider) as e:
        registry.provider_class("tts", "espeak")
    assert "espeak" in e.value.message
    available = "available: " + ", ".join(registry.PROVIDERS["tts"])
    assert e.value.hint == available and "hibari, piper" in available
    assert available in str(e.value)


@pytest.mark.parametrize(
    ("kind", "create"),
    [
        ("vad", registry.create_vad),
        ("stt", registry.create_stt),
        ("llm", registry.create_llm),
        ("tts", registry.create_tts),
    ],
)
def test_create_with_an_unknown_provider(kind: str, create: object) -> None:
    config = AgentConfig()
    getattr(config, kind).provider = "nope"
    with pytest.raises(UnknownProvider, match=f"unknown {kind} provider 'nope'") as e:
        create(config)  # type: ignore[operator]
    assert e.value.hint == "available: " + ", ".join(registry.PROVIDERS[kind])


def test_every_registered_target_names_a_module_and_class() -> None:
    for table in registry.PROVIDERS.values():
        for target in table.values():
            module, sep, cls = target.partition(":")
            assert sep and module.startswith("voxloop.providers.") and cls[:1].isupper()


def test_require_names_the_extra() -> None:
    with pytest.raises(MissingExtra) as e:
        require("voxloop_no_such_module_4b1e", "whisper")
    err = e.value
    assert isinstance(err, VoxloopError)
    assert err.extra == "whisper"
    assert "voxloop_no_such_module_4b1e" in err.message
    assert err.hint == 'install it with: pip install "voxloop[whisper]"'
    assert isinstance(err.__cause__, ImportError)


def test_require_returns_the_module() -> None:
    import json

    assert require("json", "none") is json
