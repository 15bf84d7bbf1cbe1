"""`voxloop serve`: the app on uvicorn, the address printed, the models loaded and closed once."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig
from voxloop.errors import MissingExtra, VoxloopError
from voxloop.server.app import create_app, server_state
from voxloop.server.drain import GracefulServer, Shutdown
from voxloop.server.guarded_http import guarded_protocol
from voxloop.server.logs import guard_logs
from voxloop.server.settings import ServerSettings

log = logging.getLogger("voxloop.server")


def uvicorn_server(
    app: Any,
    settings: ServerSettings,
    ssl_certfile: str = "",
    ssl_keyfile: str = "",
    on_term: Callable[[], None] | None = None,
) -> Any:
    """A uvicorn server for `app` with voxloop's WebSocket settings (it logs through voxloop's logging);
    with `on_term`, SIGTERM calls it instead of stopping the server (drain.py)."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtra("server", "uvicorn") from None
    guard_logs()  # no keys in any line, no floods of lines about bad connections
    config = uvicorn.Config(
        app,
        http=guarded_protocol(settings),  # connection cap, header deadline and size (guarded_http.py)
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_size,
        ws_per_message_deflate=False,  # PCM hardly compresses; deflate would only cost CPU
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=ssl_certfile or None,
        ssl_keyfile=ssl_keyfile or None,
    )
    return uvicorn.Server(config) if on_term is None else GracefulServer(config, on_term)


def bind(host: str, port: int) -> socket.socket:
    """Listen now (port 0: any free port), so a busy port is a clear error before models load."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise VoxloopError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            "choose another --port (is another server running there?) or --host",
        ) from None


def browser_url(host: str, port: int, scheme: str = "http") -> str:
    """The address to open on this machine (a wildcard host is reached through loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/"


def descriptors_for(connections: int) -> int:
    """Raise the process's open-file limit (as far as allowed) to hold `connections` and the
    models' files; returns the limit. With too few, silent sockets starve everything else."""
    try:
        import resource
    except ImportError:  # not on this platform
        return connections
    want = connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return want if soft == resource.RLIM_INFINITY else soft


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(
    config: AgentConfig,
    settings: ServerSettings,
    ssl_certfile: str = "",
    ssl_keyfile: str = "",
    providers: Providers | None = None,
) -> None:
    """Serve until Ctrl+C, or SIGTERM and the drain of the live sessions (drain.py); `providers`:
    instead of the ones `config` names (a test's fakes)."""
    sock = bind(settings.host, settings.port)
    if (limit := descriptors_for(settings.max_connections)) < settings.max_connections + 256:
        log.warning(
            "only %d open files allowed: lower --max-connections (%d)", limit, settings.max_connections
        )
    if not log.isEnabledFor(logging.DEBUG):  # uvicorn's start-up chatter only with -v
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    providers = providers or Providers.from_config(config)
    app = create_app(providers, config, settings)
    state = server_state(app)
    shutdown = Shutdown(state.sessions, settings.drain_s)
    server = shutdown.server = uvicorn_server(app, settings, ssl_certfile, ssl_keyfile, shutdown)
    url = browser_url(settings.host, sock.getsockname()[1], "https" if ssl_certfile else "http")
    if not is_loopback(settings.host):
        if not settings.auth_required:
            log.warning("listening beyond this machine without an API key: anyone who can reach it can talk")
        if not ssl_certfile:
            log.warning("browsers on other machines only allow the microphone on https: see --ssl-certfile")
        if not settings.allowed_hosts:
            log.info("answering requests to this machine's IP addresses; a DNS name needs --allow-host NAME")
    print(f"voxloop server on {url} (loading the models...)", flush=True)
    loop = asyncio.get_running_loop()
    serving = loop.create_task(server.serve(sockets=[sock]))
    settled = loop.create_task(state.settled.wait())
    try:
        await asyncio.wait({serving, settled}, return_when=asyncio.FIRST_COMPLETED)
        if state.load_error is not None:
            server.should_exit = True
            await serving
            e = state.load_error
            raise e if isinstance(e, VoxloopError) else VoxloopError(f"the models could not be loaded: {e}")
        if state.ready.is_set():
            keyed = " (add ?token=YOUR_KEY)" if settings.auth_required else ""
            print(f"ready: open {url}{keyed} in a browser; Ctrl+C stops the server", flush=True)
        await serving
    finally:
        settled.cancel()
        await shutdown.aclose()
        if not serving.done():
            server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)
        await providers.aclose()
        sock.close()
