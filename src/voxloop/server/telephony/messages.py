"""Twilio Media Streams messages (bidirectional, `<Connect><Stream>`), as Twilio documents them.

In, one JSON text frame each, with an `event` (every one but `connected` carries the `streamSid`):
    connected  {"event":"connected","protocol":"Call","version":"1.0.0"}
    start      {"event":"start","sequenceNumber":"1","start":{"accountSid","streamSid","callSid",
                "tracks":["inbound"],"customParameters":{...},
                "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid"}
    media      {"event":"media","sequenceNumber","media":{"track":"inbound","chunk":"1",
                "timestamp":"5","payload":"<base64 mu-law, 20 ms>"},"streamSid"}
    mark       {"event":"mark","sequenceNumber","streamSid","mark":{"name":"..."}}  (a mark we sent,
               echoed once the audio before it has played, or dropped by a `clear`)
    dtmf       {"event":"dtmf","sequenceNumber","streamSid","dtmf":{"track":"inbound_track","digit":"1"}}
    stop       {"event":"stop","sequenceNumber","stop":{"accountSid","callSid"},"streamSid"}
Out: `media` (base64 mu-law 8 kHz, no header), `mark` and `clear`, each with the `streamSid`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from voxloop.server import jsontext

MULAW = "audio/x-mulaw"


class TwilioMessageError(ValueError):
    """A frame that is not a Twilio Media Streams message this server can use (it is logged)."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    audio: bytes  # mu-law bytes, decoded from base64


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str


Message = Connected | Start | Media | Mark | Dtmf | Stop


def parse(text: str) -> Message:
    """One text frame from Twilio. Raises TwilioMessageError, saying what is wrong, otherwise."""
    try:
        msg = jsontext.loads(text)
    except ValueError as e:
        raise TwilioMessageError(f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise TwilioMessageError("not a JSON object")
    event = msg.get("event")
    if event == "connected":
        return Connected(_text(msg, "protocol", required=False), _text(msg, "version", required=False))
    sid = _text(msg, "streamSid")
    if event == "media":
        media = _obj(msg, "media")
        try:
            audio = base64.b64decode(_text(media, "payload", empty=True), validate=True)
        except (binascii.Error, ValueError) as e:
            raise TwilioMessageError(f"media.payload is not base64: {e}") from None
        return Media(
            sid,
            _text(media, "track", required=False) or "inbound",
            _number(media, "chunk"),
            _number(media, "timestamp"),
            audio,
        )
    if event == "mark":
        return Mark(sid, _text(_obj(msg, "mark"), "name"))
    if event == "dtmf":
        return Dtmf(sid, _text(_obj(msg, "dtmf"), "digit"))
    if event == "stop":
        return Stop(sid, _text(_obj(msg, "stop"), "callSid", required=False))
    if event == "start":
        return _start(sid, _obj(msg, "start"))
    raise TwilioMessageError(f"unknown event {event!r}")


def _start(sid: str, start: dict[str, Any]) -> Start:
    fmt = _obj(start, "mediaFormat")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise TwilioMessageError("start.tracks must be a list of strings")
    custom = start.get("customParameters") or {}
    if not isinstance(custom, dict):
        raise TwilioMessageError("start.customParameters must be an object")
    inner = _text(start, "streamSid", required=False)
    if inner and inner != sid:
        raise TwilioMessageError(f"start.streamSid {inner!r} differs from the message's {sid!r}")
    return Start(
        stream_sid=sid,
        call_sid=_text(start, "callSid", required=False),
        account_sid=_text(start, "accountSid", required=False),
        tracks=tuple(tracks),
        encoding=_text(fmt, "encoding"),
        sample_rate=_number(fmt, "sampleRate"),
        channels=_number(fmt, "channels"),
        custom={str(k): str(v) for k, v in custom.items()},
    )


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    v = msg.get(key)
    if not isinstance(v, dict):
        raise TwilioMessageError(f"{key!r} must be an object")
    return v


def _text(msg: dict[str, Any], key: str, *, required: bool = True, empty: bool = False) -> str:
    v = msg.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (not v and not empty):
        raise TwilioMessageError(f"{key!r} must be a non-empty string, got {v!r}")
    return v


def _number(msg: dict[str, Any], key: str) -> int:
    """Twilio sends `chunk`, `timestamp` and `sequenceNumber` as strings, rates as numbers."""
    v = msg.get(key)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise TwilioMessageError(f"{key!r} must be a whole number, got {v!r}")


# -- out ---------------------------------------------------------------------------------------------
def media(stream_sid: str, mulaw: bytes) -> dict[str, Any]:
    payload = base64.b64encode(mulaw).decode("ascii")
    return {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}


def mark(stream_sid: str, name: str) -> dict[str, Any]:
    return {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}


def clear(stream_sid: str) -> dict[str, Any]:
    return {"event": "clear", "streamSid": stream_sid}


def dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"))
