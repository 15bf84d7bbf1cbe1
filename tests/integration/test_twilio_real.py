"""A phone call on the real models: Twilio's side scripted byte for byte (tests/twilio_peer.py)
over a real socket, a recorded question as 8 kHz mu-law at real-time pace, the spoken answer back
as paced mu-law, and the caller talking over it: the call is cleared and the history keeps only
what the caller heard."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

from live_server import live_server
from twilio_peer import SID, TwilioPeer, to_phone, twilio_socket
from voxloop.agent.providers import Providers
from voxloop.audio.g711 import mulaw_decode
from voxloop.audio.pcm import resample
from voxloop.server.telephony.call import TwilioCall

from .conftest import LAMP, Arun, Corpus
from .helpers import missing_words, speech_dbfs, words

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.twilio")
OVER = "1688-142285-0002"  # "You don't mean that you thought me so silly": the caller talks over the agent
PROMPT = "You are a helpful home assistant on the phone. Answer every request in four full sentences."


async def feed_until(peer: TwilioPeer, check: Any, what: str, within: float = 90.0) -> None:
    if not await peer.silence_until(check, within):
        raise AssertionError(f"no {what} within {within} s: {[m['event'] for _, m in peer.received][-20:]}")


def test_a_phone_call_gets_a_spoken_answer_and_barge_in_clears_it(
    arun: Arun[Any], providers: Providers, corpus: Corpus
) -> None:
    question = corpus.audio(LAMP)
    over = corpus.audio(OVER)

    async def main() -> None:
        async with live_server(providers) as srv, twilio_socket(srv.port) as (ws, peer):
            await peer.connected()
            await peer.start({"system_prompt": PROMPT})
            await peer.stream(to_phone(np.concatenate([np.zeros(8000, np.float32), question])))
            # 3 s: on a busy machine the first word or two go to the voice alone, then it waits for more
            await feed_until(peer, lambda: len(peer.heard) >= 8000 * 3.0, "3 s of the answer heard")
            calls = [c for c in srv.state.sessions.live if isinstance(c, TwilioCall)]
            assert len(calls) == 1 and calls[0].session is not None
            session = calls[0].session

            # the question was understood, and the answer is speech on the line
            final = next(m.content for m in session.history.messages if m.role == "user")
            assert not missing_words(final, [corpus.clip(LAMP).transcript]), final
            assert all(m["streamSid"] == SID for _, m in peer.received)
            voice = peer.voice()
            assert speech_dbfs(voice, 8000) > -35
            heard_back = (await providers.stt.transcribe(resample(voice, 8000, 16000))).text
            assert len(words(heard_back)) >= 3, heard_back

            # the caller talks over it: cleared, and the history keeps what was heard
            await peer.stream(to_phone(over))
            await feed_until(peer, lambda: bool(session.records), "the answered turn's record")
            rec = session.records[0]
            assert rec.interrupted, rec.to_dict()
            assert peer.of("clear"), "no clear on barge-in"
            assistant = [m.content for m in session.history.messages if m.role == "assistant"]
            assert assistant[0] == rec.agent_text
            # what the phone played, transcribed, and what the history says was heard: the same words
            played = mulaw_decode(bytes(peer.heard))
            played_text = (await providers.stt.transcribe(resample(played, 8000, 16000))).text
            said = len(played) / 8000
            log.info("heard %.1f s of the answer: %r; it said %r", said, rec.agent_text, played_text)
            print(f"\nthe caller heard {said:.1f} s: {rec.agent_text!r} (transcribed: {played_text!r})")
            assert rec.agent_text and abs(len(words(rec.agent_text)) - len(words(played_text))) <= 2
            assert words(rec.agent_text)[:2] == words(played_text)[:2]

            await peer.stop()
            await asyncio.wait_for(ws.wait_closed(), 30)
            assert ws.close_code == 1000

    arun(main())
