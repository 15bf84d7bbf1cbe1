"""The voice server: `voxloop serve`, a browser page, and a WebSocket protocol (docs/protocol.md).

    app.py         the ASGI app: routes, who may connect, the shared models
    connection.py  one WebSocket connection = one voice session, with its limits
    protocol.py    the wire format (version, messages, error codes)
    sink.py        the agent's voice to the client, and what the client has played
    limits.py      frame-rate and real-time limits
    run.py         uvicorn, the printed address
    static/        the page (HTML, CSS, JavaScript, AudioWorklets), served by the app itself

Importing this package needs nothing beyond voxloop; the modules above need `voxloop[server]`.
"""

from voxloop.server.settings import ServerSettings

__all__ = ["ServerSettings"]
