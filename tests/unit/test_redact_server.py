"""--redact-logs and --redact-llm on the voice server, over a real socket with fake models: the
events the client gets and the server's log lines hold [PHONE] and [EMAIL], and so does the
prompt the language model is sent."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from conftest import make_providers, silence, tone
from fakes import FakeLLM, FakeSTT
from live_server import agent_client, live_server
from voxloop.config import AgentConfig, PrivacyConfig

SAID = "call me at 415-555-2671 or mail ann.lee@example.com"
MASKED = "call me at [PHONE] or mail [EMAIL]"


pytestmark = pytest.mark.usefixtures("no_redact_filters_left")


def test_server_sessions_mask_events_logs_and_the_prompt(caplog: pytest.LogCaptureFixture) -> None:
    llm = FakeLLM()
    providers = make_providers(stt=FakeSTT([SAID], partial_every_s=0.3), llm=llm)
    config = AgentConfig(privacy=PrivacyConfig(redact_logs=True, redact_llm=True))

    async def main() -> None:
        async with (
            live_server(providers, config=config) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            await c.start()
            await c.send_audio(np.concatenate([silence(0.3), tone(1.0), silence(0.6)]))
            turn = (await c.event("turn_completed", 1))["turn"]
            assert c.of("final_transcript")[0]["text"] == MASKED
            assert all(p["text"] == MASKED for p in c.of("partial_transcript"))
            assert turn["user_text"] == MASKED

    caplog.set_level(logging.INFO)
    asyncio.run(asyncio.wait_for(main(), 60))
    assert llm.calls and all("ann.lee" not in m.content for call in llm.calls for m in call.messages)
    assert llm.calls[-1].user_text == MASKED
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert MASKED in logged  # the session's turn line names the user's words, masked
    assert "ann.lee" not in logged and "2671" not in logged
