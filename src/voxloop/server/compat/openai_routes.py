"""The OpenAI-compatible routes, for app.py (each behind keys, limits and OpenAI's error bodies).

GET  /v1/models, /v1/models/{model}   the names this server answers to (compat/names.py)
POST /v1/audio/transcriptions          openai_transcribe.py
POST /v1/audio/speech                  openai_speech.py
POST /v1/chat/completions              openai_chat.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from voxloop.server.compat.openai_chat import chat_handler
from voxloop.server.compat.openai_http import endpoint
from voxloop.server.compat.openai_models import models_handlers
from voxloop.server.compat.openai_speech import speech_handler
from voxloop.server.compat.openai_transcribe import transcriptions_handler

if TYPE_CHECKING:
    from voxloop.server.state import ServerState


def openai_routes(state: ServerState) -> list[Route]:
    list_models, get_model = models_handlers(state)
    return [
        Route("/v1/models", endpoint(state, list_models, uses_models=False), methods=["GET"]),
        Route("/v1/models/{model}", endpoint(state, get_model, uses_models=False), methods=["GET"]),
        Route("/v1/audio/transcriptions", endpoint(state, transcriptions_handler(state)), methods=["POST"]),
        Route("/v1/audio/speech", endpoint(state, speech_handler(state)), methods=["POST"]),
        Route("/v1/chat/completions", endpoint(state, chat_handler(state)), methods=["POST"]),
    ]
