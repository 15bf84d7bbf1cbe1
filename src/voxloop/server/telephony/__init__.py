"""Phone calls: Twilio Media Streams on `/v1/telephony/twilio` (docs/telephony.md).

messages.py   Twilio's JSON messages, both ways (parsed and checked; built)
signature.py  X-Twilio-Signature: HMAC-SHA1 over the URL Twilio requested
sink.py       the agent's voice as paced 20 ms mu-law frames, with marks and clear
call.py       one call: one voice session on the shared models
route.py      the WebSocket route: who may connect, the session slots
"""

from voxloop.server.telephony.route import PATH, telephony_routes

__all__ = ["PATH", "telephony_routes"]
