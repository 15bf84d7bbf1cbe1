"""--llm, --llm-model and --openai-base-url on every command that runs the agent."""

from __future__ import annotations

from typing import Any

import pytest

from voxloop import commands
from voxloop.bench import latency
from voxloop.cli import main
from voxloop.config import AgentConfig

COMMANDS = {
    "demo": (["demo"], commands, "demo"),
    "run": (["run", "--in", "x.wav"], commands, "run_wav"),
    "talk": (["talk"], commands, "talk"),
    "serve": (["serve"], commands, "serve"),
    "bench": (["bench", "latency", "--corpus", "c"], latency, "run"),
}


def configured(monkeypatch: pytest.MonkeyPatch, command: str, *options: str) -> AgentConfig:
    argv, module, name = COMMANDS[command]
    seen: list[AgentConfig] = []

    async def fake(*args: Any, **kw: Any) -> None:
        seen.extend(a for a in args if isinstance(a, AgentConfig))

    monkeypatch.setattr(module, name, fake)
    assert main(["-q", *argv, *options]) == 0
    return seen[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_openai_chain_and_its_endpoint_reach_the_config(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    url = "http://127.0.0.1:8000/v1"
    cfg = configured(
        monkeypatch, command, "--llm", "openai,llama", "--llm-model", "gpt-4o", "--openai-base-url", url
    )
    assert cfg.llm.provider == "openai,llama"
    assert (cfg.llm.openai.model, cfg.llm.openai.base_url, cfg.llm.model) == ("gpt-4o", url, "qwen2.5-1.5b")


def test_a_local_model_name_goes_to_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = configured(monkeypatch, "run", "--llm", "openai,llama", "--llm-model", "smollm2-135m")
    assert (cfg.llm.model, cfg.llm.openai.model) == ("smollm2-135m", "gpt-4o-mini")
    assert configured(monkeypatch, "run").llm.provider == "llama"
    # the endpoint alone (voxloop serve knows its local model's name too)
    cfg = configured(monkeypatch, "run", "--llm", "openai", "--llm-model", "smollm2-135m")
    assert (cfg.llm.model, cfg.llm.openai.model) == ("qwen2.5-1.5b", "smollm2-135m")


def test_bad_llm_choices_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "run", "--in", "x.wav", "--llm-model", "gpt-4o"]) == 2
    assert "--llm-model gpt-4o is not a local model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["-q", "run", "--in", "x.wav", "--llm", "openai,nope"])
    assert "unknown llm provider 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_fastest_profile_takes_each_stages_fastest_choice(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    cfg = configured(monkeypatch, command, "--profile", "fastest")
    assert (cfg.stt.provider, cfg.llm.provider, cfg.llm.model) == ("moonshine", "llama", "qwen2.5-0.5b")
    assert (cfg.turn.model, cfg.turn.model_threshold, cfg.turn.first_words) == ("smart-turn", 0.5, 1)
    plain = configured(monkeypatch, command)
    assert (plain.stt.provider, plain.llm.model, plain.turn.model) == ("whisper", "qwen2.5-1.5b", "auto")
    assert plain.turn.model_threshold > 1 and plain.turn.first_words == 3


def test_options_given_beside_the_profile_still_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = configured(
        monkeypatch,
        "run",
        "--profile",
        "fastest",
        "--stt",
        "whisper,moonshine",
        "--llm-model",
        "smollm2-135m",
    )
    assert (cfg.stt.provider, cfg.llm.model, cfg.turn.model) == (
        "whisper,moonshine",
        "smollm2-135m",
        "smart-turn",
    )
    cfg = configured(monkeypatch, "run", "--profile", "fastest", "--llm", "openai")
    assert (cfg.llm.provider, cfg.llm.model, cfg.llm.openai.model) == (
        "openai",
        "qwen2.5-1.5b",
        "gpt-4o-mini",
    )


def test_an_unknown_profile_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["-q", "run", "--in", "x.wav", "--profile", "quickest"])
    assert "invalid choice: 'quickest'" in capsys.readouterr().err
