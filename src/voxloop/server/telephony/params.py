"""A call's custom parameters (`<Parameter>`s in the TwiML, `customParameters` in `start`) that
set its session: the same settings, checked the same way, as `/v1/agent`'s `start`."""

from __future__ import annotations

import json
from typing import Any

from voxloop.config import AgentConfig
from voxloop.server import protocol as p

SETTINGS = ("system_prompt", "end_silence_ms", "interruptions")  # the others are only logged


def session_config(base: AgentConfig, custom: dict[str, str]) -> AgentConfig:
    """`base` with the settings among `custom` (text, as Twilio sends them) applied. Raises
    ProtocolError, saying which is wrong, when one is invalid."""
    raw: dict[str, Any] = {k: custom[k] for k in SETTINGS if k in custom}
    if not raw:
        return base
    silence = raw.get("end_silence_ms")
    if silence is not None and silence.isdigit():
        raw["end_silence_ms"] = int(silence)
    flag = raw.get("interruptions")
    if flag is not None and flag.lower() in ("true", "false"):
        raw["interruptions"] = flag.lower() == "true"
    start = p.parse(json.dumps({"type": "start", "input_sample_rate": 8000, "settings": raw}))
    assert isinstance(start, p.Start)
    p.check_prompt_budget(start.settings, base.llm.context)
    return start.settings.apply(base)
