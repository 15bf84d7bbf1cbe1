"""Twilio's messages parsed and built (server/telephony/messages.py), and X-Twilio-Signature
(server/telephony/signature.py) against the test vectors of Twilio's own validator."""

from __future__ import annotations

import base64

import pytest

from twilio_peer import SID
from voxloop.server.telephony import messages as tm
from voxloop.server.telephony import signature

START = (
    '{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"$SID","callSid":"CA1",'
    '"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},'
    '"customParameters":{"FirstName":"Jane"}},"streamSid":"$SID"}'.replace("$SID", SID)
)


def test_twilio_messages_are_read_as_twilio_sends_them() -> None:
    assert tm.parse('{"event":"connected","protocol":"Call","version":"1.0.0"}') == tm.Connected(
        "Call", "1.0.0"
    )
    start = tm.parse(START)
    assert start == tm.Start(SID, "CA1", "AC1", ("inbound",), "audio/x-mulaw", 8000, 1, {"FirstName": "Jane"})
    media = tm.parse(
        '{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5",'
        '"payload":"$PAYLOAD"},"streamSid":"$SID"}'.replace("$SID", SID).replace(
            "$PAYLOAD", base64.b64encode(b"\xff" * 160).decode()
        )
    )
    assert media == tm.Media(SID, "inbound", 1, 5, b"\xff" * 160)
    assert tm.parse(
        '{"event":"mark","sequenceNumber":"4","streamSid":"$SID","mark":{"name":"m1"}}'.replace("$SID", SID)
    ) == tm.Mark(SID, "m1")
    dtmf = '{"event":"dtmf","streamSid":"$SID","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}'
    assert tm.parse(dtmf.replace("$SID", SID)) == tm.Dtmf(SID, "1")
    stop = (
        '{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"$SID"}'
    )
    assert tm.parse(stop.replace("$SID", SID)) == tm.Stop(SID, "CA1")


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        "[]",
        '{"event":"media","media":{"payload":""}}',
        '{"event":"media","streamSid":"MZ1","media":{"payload":"@@"}}',
        '{"event":"media","streamSid":"MZ1","media":{"payload":"//8=","chunk":"x","timestamp":"0"}}',
        '{"event":"mark","streamSid":"MZ1","mark":{"name":""}}',
        '{"event":"start","streamSid":"MZ1","start":{"mediaFormat":{"encoding":"audio/x-mulaw"}}}',
        '{"event":"hangup","streamSid":"MZ1"}',
        "[" * 3000,
    ],
)
def test_what_is_not_a_twilio_message_says_why(text: str) -> None:
    with pytest.raises(tm.TwilioMessageError):
        tm.parse(text)


def test_messages_to_twilio_carry_the_stream_sid() -> None:
    assert tm.dumps(
        tm.media(SID, b"\xff\x7f")
    ) == '{"event":"media","streamSid":"$SID","media":{"payload":"/38="}}'.replace("$SID", SID)
    assert tm.dumps(tm.mark(SID, "m1")) == '{"event":"mark","streamSid":"$SID","mark":{"name":"m1"}}'.replace(
        "$SID", SID
    )
    assert tm.dumps(tm.clear(SID)) == '{"event":"clear","streamSid":"$SID"}'.replace("$SID", SID)


# Twilio's validator's test vectors (twilio-python tests/unit/test_request_validator.py)
TOKEN, URL = "12345", "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def test_the_signature_is_twilios() -> None:
    assert signature.compute(TOKEN, URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature.valid(TOKEN, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [URL], PARAMS)
    # with a port, or signed with the default one
    assert signature.valid(TOKEN, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [URL.replace(".com", ".com:1234")], PARAMS)
    assert signature.valid(TOKEN, "kvajT1Ptam85bY51eRf/AJRuM3w=", [URL], PARAMS)
    assert not signature.valid(TOKEN, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [URL + "&x=1"], PARAMS)
    assert not signature.valid("other", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", [URL], PARAMS)
    assert not signature.valid(TOKEN, None, [URL], PARAMS) and not signature.valid("", "", [URL])


def test_the_websocket_url_twilio_signed_is_rebuilt_from_the_host_or_given() -> None:
    assert signature.request_urls("voice.example.com", "/v1/telephony/twilio", "") == [
        "wss://voice.example.com/v1/telephony/twilio"
    ]
    given = signature.request_urls("127.0.0.1:8000", "/v1/telephony/twilio", "a=1", "wss://voice.example.com")
    assert given == ["wss://voice.example.com/v1/telephony/twilio?a=1"]
    full = signature.request_urls("h", "/v1/telephony/twilio", "", "wss://voice.example.com/phone/")
    assert full == ["wss://voice.example.com/phone"]


def test_custom_parameters_are_settings_checked_like_start_settings() -> None:
    from voxloop.config import AgentConfig
    from voxloop.server import protocol as p
    from voxloop.server.telephony.params import session_config

    base = AgentConfig()
    got = session_config(base, {"end_silence_ms": "700", "interruptions": "False", "caller": "+1555"})
    assert got.turn.end_silence_ms == 700 and not got.turn.interruptions
    assert session_config(base, {"caller": "+1555"}) is base
    for bad in (
        {"end_silence_ms": "fast"},
        {"end_silence_ms": "50"},
        {"interruptions": "maybe"},
        {"system_prompt": ""},
    ):
        with pytest.raises(p.ProtocolError):
            session_config(base, bad)
