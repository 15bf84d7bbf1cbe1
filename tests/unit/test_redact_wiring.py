"""--redact-llm and --redact-logs in a session (fake providers, virtual time): what the LLM is
sent, what the history keeps, what subscribers, turns.jsonl and log lines get."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from conftest import conversation, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT
from voxloop.agent import events as ev
from voxloop.agent.history import History
from voxloop.config import AgentConfig, PrivacyConfig
from voxloop.metrics.logctx import JsonFormatter
from voxloop.redact import redact
from voxloop.redact.logs import RedactPII, redact_logging
from voxloop.transports.wav import PacedInput, write_outputs

SAID = "my email is ann.lee@example.com and my number is four one five five five five two six seven one"
MASKED = "my email is [EMAIL] and my number is [PHONE]"


pytestmark = pytest.mark.usefixtures("no_redact_filters_left")  # a session installs the filter process-wide


def _talk(privacy: PrivacyConfig, out: Path | None = None) -> tuple[FakeLLM, list[ev.Event], list[str]]:
    llm = FakeLLM(delay=0.01)
    seen: list[ev.Event] = []
    history: list[str] = []

    async def main() -> None:
        providers = make_providers(stt=FakeSTT([SAID], partial_every_s=0.2), llm=llm)
        async with conversation(providers, AgentConfig(privacy=privacy)) as c:
            await c.turn(1.0)
            seen.extend(c.events)
            history.extend(m.content for m in c.session.history.messages if m.role == "user")
            if out is not None:
                write_outputs(out, c.session, PacedInput(c.session), c.sink)

    run_virtual(main())
    return llm, seen, history


def test_redact_llm_keeps_personal_data_out_of_the_prompt() -> None:
    llm, _, history = _talk(PrivacyConfig(redact_llm=True))
    sent = [m.content for call in llm.calls for m in call.messages] + [
        m.content for msgs in llm.prefills for m in msgs
    ]
    assert llm.calls and all("ann.lee@example.com" not in s and "four one five" not in s for s in sent)
    assert llm.calls[-1].user_text == MASKED
    assert history == [MASKED]  # the history keeps what the LLM saw


def test_without_redact_llm_the_prompt_has_the_words_as_said() -> None:
    llm, _, history = _talk(PrivacyConfig())
    assert llm.calls[-1].user_text == SAID and history == [SAID]


def test_redact_logs_masks_events_and_turns_jsonl_not_the_prompt(tmp_path: Path) -> None:
    llm, seen, _ = _talk(PrivacyConfig(redact_logs=True), tmp_path)
    assert llm.calls[-1].user_text == SAID  # --redact-logs alone leaves the LLM its words
    finals = [e for e in seen if isinstance(e, ev.FinalTranscript)]
    assert [e.text for e in finals] == [MASKED]
    done = [e for e in seen if isinstance(e, ev.TurnCompleted)]
    assert done[0].record["user_text"] == MASKED
    lines = (tmp_path / "turns.jsonl").read_text()
    assert "ann.lee" not in lines and "four one five" not in lines
    assert json.loads(lines.splitlines()[0])["user_text"] == MASKED


def test_log_lines_are_masked_arguments_and_tracebacks_too() -> None:
    logger = logging.getLogger("test.redact.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        redact_logging(logger)
        redact_logging(logger)  # once only
        assert sum(isinstance(f, RedactPII) for f in handler.filters) == 1
        logger.warning("turn 1: user said %r", "call 415-555-2671 from 10.1.2.3")
        logger.info("the meeting is at 10:30 on flight UA 1549")
        try:
            raise ValueError("bad card 4111 1111 1111 1111")
        except ValueError:
            logger.exception("failed for ann@example.com")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "turn 1: user said 'call [PHONE] from [IP]'" in text
    assert "the meeting is at 10:30 on flight UA 1549" in text
    assert "failed for [EMAIL]" in text and "bad card [CARD]" in text and "4111" not in text


def test_history_scrubs_words_and_a_number_split_between_two_messages() -> None:
    h = History("s", scrub=redact)
    h.add_user("my number is four one five five")  # four digits: nothing to mask yet
    h.add_user("five five two six seven one")  # the reply to the first was never heard: joined
    assert [m.content for m in h.messages] == ["my number is [PHONE]"]
    probe = h.prompt_with("and mail ann@example.com")
    assert probe[-1].content == "my number is [PHONE] and mail [EMAIL]"
    assert [m.content for m in h.messages] == ["my number is [PHONE]"]  # prompt_with changes nothing


def test_a_formatter_of_its_own_cannot_format_the_exception_again() -> None:
    """A formatter that formats `exc_info` itself (the JSON one) finds none: only the masked text."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("ann@example.com",), None)
    try:
        raise ValueError("card 4111 1111 1111 1111")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactPII().filter(record)
    assert record.exc_info is None and record.getMessage() == "failed for [EMAIL]"
    assert record.exc_text is not None and "ValueError: card [CARD]" in record.exc_text
    assert "[CARD]" in logging.Formatter().format(record) and "4111" not in logging.Formatter().format(record)


def test_json_log_lines_keep_the_masked_traceback() -> None:
    """--log-json with --redact-logs: the line's `error` is the masked traceback, not dropped."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise ValueError("card 4111 1111 1111 1111")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactPII().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: card [CARD]" in line["error"] and "4111" not in line["error"]
