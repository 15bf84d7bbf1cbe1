"""GET /v1/models and /v1/models/{model}: every name the server answers to (compat/names.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voxloop.server.compat.names import kind_of, listed
from voxloop.server.compat.openai_http import OpenAIError

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

CREATED = int(time.time())  # when this server started: OpenAI's `created` is a Unix time


def model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "voxloop"}


def models_handlers(state: ServerState) -> tuple[Any, Any]:
    async def list_models(request: Request) -> Response:
        data = [model_object(name) for name, _ in listed(state.config)]
        return JSONResponse({"object": "list", "data": data})

    async def get_model(request: Request) -> Response:
        name = request.path_params["model"]
        if kind_of(name, state.config) is None:
            raise OpenAIError(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return JSONResponse(model_object(name))

    return list_models, get_model
