"""The `voxloop` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from voxloop.config import AgentConfig, LLMConfig, OpenAIConfig, STTConfig, TTSConfig, TurnConfig
from voxloop.errors import UnknownProvider, VoxloopError
from voxloop.providers.registry import names
from voxloop.providers.tts.cache import options as tts_cache_options
from voxloop.providers.turn import TURN_MODEL_HELP, TURN_MODELS
from voxloop.redact import command as redact_command
from voxloop.server.settings import ServerSettings

log = logging.getLogger("voxloop")
LOCAL_LLMS = ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m")


def _provider(kind: str) -> Callable[[str], str]:
    """An argparse type: one provider of `kind`, or a fallback chain of them (`deepgram,whisper`)."""

    def check(value: str) -> str:
        try:
            names(kind, value)
        except UnknownProvider as e:
            raise argparse.ArgumentTypeError(f"{e.message} ({e.hint})") from None
        return value

    return check


def _add_stt_choice(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--stt",
        default=STTConfig.provider,
        type=_provider("stt"),
        help="the recogniser: whisper (--stt-model), moonshine (Moonshine tiny, English) or deepgram "
        "(Nova-3 over its WebSocket); a comma list is a fallback chain, e.g. deepgram,whisper",
    )
    _add_deepgram_url(g)


def _add_transcribe_options(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files, or folders (recursive)")
    tr.add_argument("--out", type=Path, default=None, help="one transcript per file here, mirroring folders")
    tr.add_argument("--format", default="txt", choices=["json", "txt", "srt", "vtt"])
    tr.add_argument("--workers", type=int, default=0, help="files decoded at once, one core each (0: all)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _add_deepgram_url(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--deepgram-url",
        default="",
        help="Deepgram's API or a compatible server, e.g. http://127.0.0.1:8000 (default: "
        "$DEEPGRAM_BASE_URL, else https://api.deepgram.com; the key: $DEEPGRAM_API_KEY)",
    )


def _add_stack_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    _add_stt_choice(g)
    g.add_argument("--stt-model", default=STTConfig.model, choices=["tiny.en", "base"], help="for whisper")
    g.add_argument(
        "--stt-final-model",
        default=STTConfig.final_model,
        choices=["", "tiny.en", "base"],
        help="for whisper: the model of the final transcripts (default: --stt-model); base is more "
        "accurate and ~250 ms slower per reply",
    )
    g.add_argument("--keywords", default="", help="comma-separated domain terms to steer the recogniser to")
    g.add_argument(
        "--llm",
        default=LLMConfig.provider,
        type=_provider("llm"),
        help="the language model: llama (local, --llm-model) or openai (any OpenAI-compatible chat "
        "endpoint, --openai-base-url); a comma list is a fallback chain, e.g. openai,llama",
    )
    g.add_argument(
        "--llm-model",
        default="",
        help=f"a local model ({', '.join(LOCAL_LLMS)}; default {LLMConfig.model}) or, for --llm openai, "
        f"the endpoint's model name (default {OpenAIConfig.model})",
    )
    g.add_argument(
        "--openai-base-url",
        default="",
        help="for --llm openai: the endpoint, e.g. http://127.0.0.1:8000/v1 for voxloop serve (default: "
        "$OPENAI_BASE_URL, else OpenAI's; the key: $OPENAI_API_KEY)",
    )
    g.add_argument(
        "--tts",
        default=TTSConfig.provider,
        type=_provider("tts"),
        help="the agent's voice: hibari, piper or deepgram (Aura-2); a comma list is a fallback chain",
    )
    g.add_argument(
        "--stt-beam",
        type=int,
        default=STTConfig.final_beam_size,
        help="beam width of the recogniser's final decodes (1: greedy)",
    )
    g.add_argument("--stt-threads", type=int, default=STTConfig.threads)
    g.add_argument("--llm-threads", type=int, default=LLMConfig.threads)
    t = p.add_argument_group("turn-taking")
    t.add_argument(
        "--end-silence-ms",
        type=int,
        default=TurnConfig.end_silence_ms,
        help="silence that ends the user's turn",
    )
    t.add_argument(
        "--fixed-silence",
        action="store_true",
        help="never lengthen the end silence for a user who pauses mid-thought",
    )
    t.add_argument("--half-duplex", action="store_true", help="ignore the microphone while the agent speaks")
    t.add_argument("--turn-model", default=TurnConfig.model, choices=TURN_MODELS, help=TURN_MODEL_HELP)
    p.add_argument(
        "--tools", default="", help="tools the agent may call: demo, a dotted module or a .py file"
    )
    p.add_argument("--kb", default="", help="--tools demo: a folder of .txt files for its knowledge base")
    redact_command.add_options(p)


def _config(a: argparse.Namespace) -> AgentConfig:
    cfg = AgentConfig()
    cfg.stt.provider, cfg.stt.model, cfg.stt.threads = a.stt, a.stt_model, a.stt_threads
    if not 1 <= a.stt_beam <= 10:
        raise VoxloopError(f"--stt-beam {a.stt_beam} is out of range", "use 1 (greedy) to 10")
    cfg.stt.final_beam_size = a.stt_beam
    cfg.stt.final_model = a.stt_final_model
    cfg.turn.adaptive_silence, cfg.turn.model = not a.fixed_silence, a.turn_model
    cfg.stt.keywords = [k.strip() for k in a.keywords.split(",") if k.strip()]
    _llm_choice(cfg.llm, a.llm, a.llm_model, a.openai_base_url)
    cfg.llm.threads = a.llm_threads
    cfg.tts.provider = a.tts
    cfg.tts.voice = "joe" if a.tts.split(",")[0] == "piper" else "heart"
    cfg.stt.deepgram.base_url = a.deepgram_url
    cfg.tts.deepgram = cfg.stt.deepgram  # one Deepgram account and server for both
    cfg.turn.end_silence_ms = a.end_silence_ms
    cfg.turn.interruptions = not a.half_duplex
    cfg.tts.cache = tts_cache_options.from_args(a)
    cfg.tools.module, cfg.tools.kb_dir = a.tools, a.kb
    cfg.privacy = redact_command.privacy(a)
    return cfg


def _llm_choice(cfg: LLMConfig, provider: str, model: str, base_url: str) -> None:
    """--llm, --llm-model and --openai-base-url: with a local model in the chain, a local model's
    name goes to it; any other name to the OpenAI-compatible endpoint (which must be in the chain)."""
    cfg.provider = provider
    cfg.openai.base_url = base_url
    chain = [n.strip() for n in provider.split(",")]
    if not model:
        return
    if model in LOCAL_LLMS and ("llama" in chain or "openai" not in chain):
        cfg.model = model
    elif "openai" in chain:
        cfg.openai.model = model
    else:
        raise VoxloopError(
            f"--llm-model {model} is not a local model",
            f"use one of {', '.join(LOCAL_LLMS)}, or --llm openai",
        )


def _add_ops_options(p: argparse.ArgumentParser, *, metrics_port: bool) -> None:
    g = p.add_argument_group("operations")
    g.add_argument("--log-json", action="store_true", help="log lines as JSON, with session and turn ids")
    if metrics_port:
        g.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the session runs",
        )


def _add_server_options(p: argparse.ArgumentParser) -> None:
    d = ServerSettings()
    g = p.add_argument_group("server")
    g.add_argument("--host", default=d.host, help="address to listen on (default: this machine only)")
    g.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    g.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="a key clients must present (repeatable; also $VOXLOOP_API_KEYS, comma-separated)",
    )
    g.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="a web page origin allowed besides the server's own, e.g. https://app.example (repeatable)",
    )
    g.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="a Host name the server answers to besides loopback names and IP addresses (repeatable; *: any)",
    )
    g.add_argument("--max-sessions", type=int, default=d.max_sessions, help="concurrent voice sessions")
    g.add_argument(
        "--latency-budget-ms",
        type=float,
        default=d.latency_budget_ms,
        help="refuse new sessions (server_busy) while recent turns' p95 end-of-speech-to-answer at the "
        "present load is over this (0: only --max-sessions limits them)",
    )
    g.add_argument(
        "--busy-503",
        action="store_true",
        help="refuse a session the server cannot take with HTTP 503 at the handshake (behind a load "
        "balancer, which then tries another worker) instead of a server_busy error on an open socket",
    )
    g.add_argument("--max-frame-bytes", type=int, default=d.max_frame_bytes)
    g.add_argument("--max-frames-per-s", type=float, default=d.max_frames_per_s)
    g.add_argument("--idle-timeout-s", type=float, default=d.idle_timeout_s)
    g.add_argument("--max-connections", type=int, default=d.max_connections, help="open TCP connections")
    g.add_argument(
        "--handshake-timeout-s",
        type=float,
        default=d.handshake_timeout_s,
        help="a request's headers are due by then",
    )
    g.add_argument(
        "--max-body-bytes", type=int, default=d.max_body_bytes, help="largest HTTP request body (uploads)"
    )
    g.add_argument(
        "--drain-seconds",
        type=float,
        default=d.drain_s,
        help="on SIGTERM, the most time live sessions get to finish their replies before the server exits",
    )
    g.add_argument("--ssl-certfile", default="", help="serve https/wss (browsers on other machines need it)")
    g.add_argument("--ssl-keyfile", default="")
    g.add_argument(
        "--twilio-auth-token",
        default="",
        help="check Twilio's X-Twilio-Signature on /v1/telephony/twilio (better: $TWILIO_AUTH_TOKEN)",
    )
    g.add_argument(
        "--twilio-public-url", default="", help="the wss:// <Stream url> Twilio signs, behind a proxy"
    )


def _server_settings(a: argparse.Namespace) -> ServerSettings:
    env_keys = [k.strip() for k in os.environ.get("VOXLOOP_API_KEYS", "").split(",") if k.strip()]
    if (
        a.max_sessions < 1
        or a.max_frame_bytes < 1024
        or a.max_frames_per_s <= 0
        or a.idle_timeout_s <= 0
        or a.max_body_bytes < 1024
        or a.max_connections < a.max_sessions
        or a.handshake_timeout_s <= 0
        or a.latency_budget_ms < 0
        or a.drain_seconds < 0
    ):
        raise VoxloopError(
            "a server limit is out of range",
            "--max-sessions >= 1, --max-connections >= --max-sessions, --max-frame-bytes and --max-body-bytes"
            " >= 1024, and positive rates and timeouts",
        )
    return ServerSettings(
        host=a.host,
        port=a.port,
        api_keys=tuple(dict.fromkeys([*a.api_key, *env_keys])),
        allowed_origins=tuple(a.allow_origin),
        allowed_hosts=tuple(a.allow_host),
        max_sessions=a.max_sessions,
        max_frame_bytes=a.max_frame_bytes,
        max_frames_per_s=a.max_frames_per_s,
        idle_timeout_s=a.idle_timeout_s,
        max_body_bytes=a.max_body_bytes,
        max_connections=a.max_connections,
        handshake_timeout_s=a.handshake_timeout_s,
        latency_budget_ms=a.latency_budget_ms,
        busy_503=a.busy_503,
        drain_s=a.drain_seconds,
        twilio_auth_token=a.twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN", ""),
        twilio_public_url=a.twilio_public_url,
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(prog="voxloop", description="A real-time voice agent, offline by default.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    ap.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="a short spoken conversation through the full local stack")
    d.add_argument("--out", type=Path, default=Path("demo-out"))
    _add_stack_options(d)
    tts_cache_options.add_options(d)

    r = sub.add_parser("run", help="talk to the agent through a WAV file, fed at real-time pace")
    r.add_argument("--in", dest="inp", type=Path, required=True, help="the user's side, any rate")
    r.add_argument("--out", type=Path, default=Path("run-out"))
    _add_stack_options(r)
    _add_ops_options(r, metrics_port=True)
    tts_cache_options.add_options(r)

    t = sub.add_parser("talk", help="talk to the agent with your microphone and speaker")
    _add_stack_options(t)
    _add_ops_options(t, metrics_port=True)
    tts_cache_options.add_options(t)

    sv = sub.add_parser("serve", help="the voice server: a browser page, and a WebSocket API at /v1/agent")
    _add_server_options(sv)
    _add_stack_options(sv)
    _add_ops_options(sv, metrics_port=False)  # its metrics are at GET /metrics
    tts_cache_options.add_options(sv)

    tr = sub.add_parser("transcribe", help="transcribe audio files and folders (batch, every core)")
    _add_transcribe_options(tr)
    _add_stt_choice(tr)
    tr.add_argument("--stt-model", default=STTConfig.model, choices=["tiny.en", "base"], help="for whisper")
    tr.add_argument("--keywords", default="")

    s = sub.add_parser("say", help="speak text to a WAV file")
    s.add_argument("text")
    s.add_argument("-o", "--out", type=Path, default=Path("say.wav"))
    s.add_argument("--tts", default="hibari", type=_provider("tts"))
    _add_deepgram_url(s)
    s.add_argument("--speed", type=float, default=1.0)

    b = sub.add_parser("bench", help="benchmarks: latency, wer, turns, faults, answers, load")
    bsub = b.add_subparsers(dest="bench", required=True)
    for name, what in (
        ("latency", "every stage of every turn, and a sequential baseline"),
        ("wer", "word error rate of the streaming recogniser beside offline decoding"),
        ("turns", "barge-in, echo and noise scenarios over the agent's voice"),
        ("faults", "recovery from cloud provider faults, injected on a schedule against a local server"),
        ("answers", "spoken questions with expected answers: replies right, and how soon they begin"),
    ):
        bp = bsub.add_parser(name, help=what)
        bp.add_argument(
            "--corpus",
            type=Path,
            required=name != "faults",
            help="a folder with manifest.tsv and WAVs (faults: $VOXLOOP_CORPUS or ../shared/corpus)",
        )
        bp.add_argument("--out", type=Path, default=Path("bench-out"))
        bp.add_argument("--limit", type=int, default=None, help="only the first N clips")
        bp.add_argument(
            "--cpu-load",
            type=int,
            default=0,
            metavar="N",
            help="run N busy processes (one core each) beside the benchmark, for all of it (default 0)",
        )
        if name == "latency":
            bp.add_argument("--no-baseline", action="store_true", help="skip the sequential baseline")
        if name == "wer":
            bp.add_argument(
                "--long",
                action="store_true",
                help="long turns (20-40 s) built from the corpus's speakers instead of its clips",
            )
            bp.add_argument(
                "--opus-kbps",
                type=int,
                default=0,
                help="hear the clips through Opus at this bitrate (16 kHz)",
            )
            bp.add_argument(
                "--telephone",
                action="store_true",
                help="each clip also as a phone call carries it (8 kHz mu-law), with the end-of-turn rules on both",
            )
        if name == "turns":
            bp.add_argument("--trials", type=int, default=20, help="trials per scenario (default 20)")
            bp.add_argument("--seed", type=int, default=0)
            bp.add_argument(
                "--scenarios",
                default="",
                help="comma-separated, of: interrupt, echo, echo_interrupt, noise (default: all)",
            )
            bp.add_argument(
                "--telephone",
                action="store_true",
                help="the caller's microphone through a phone line (8 kHz mu-law)",
            )
        if name == "answers":
            bp.add_argument(
                "--make-corpus",
                action="store_true",
                help="voice the built-in question set into --corpus first (Piper joe), if it has no answers.tsv",
            )
        if name == "faults":
            bp.add_argument(
                "--kinds", default="", help="comma-separated fault kinds, one per clip (default: all)"
            )
        _add_stack_options(bp)

    from voxloop.bench.load_cli import add_parser as add_load

    add_load(bsub)
    from voxloop.bench.tts_cache import add_parser as add_tts_cache

    add_tts_cache(bsub)

    sub.add_parser("redact", help="mask personal data in text: reads lines on stdin, writes each masked")

    m = sub.add_parser("models", help="list the local models and prepare them (join parts, check sha256)")
    m.add_argument("--prepare", action="store_true")

    a = ap.parse_args(argv)
    level = logging.DEBUG if a.verbose else logging.WARNING if a.quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if getattr(a, "log_json", False):
        from voxloop.metrics.logctx import use_json_logs

        use_json_logs()
    if a.cmd == "redact":
        return redact_command.stream(sys.stdin, sys.stdout)
    if getattr(a, "redact_logs", False):
        redact_command.redact_logging()
    try:
        return asyncio.run(_dispatch(a))
    except VoxloopError as e:
        print(f"voxloop: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  -> {e.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(a: argparse.Namespace) -> int:
    from voxloop import commands

    if a.cmd == "demo":
        t0 = time.perf_counter()
        await commands.demo(a.out, _config(a))
        log.info("demo finished in %.0f s; wrote %s", time.perf_counter() - t0, a.out)
    elif a.cmd == "run":
        await commands.run_wav(a.inp, a.out, _config(a), metrics_port=a.metrics_port)
    elif a.cmd == "talk":
        await commands.talk(_config(a), metrics_port=a.metrics_port)
    elif a.cmd == "serve":
        await commands.serve(_config(a), _server_settings(a), a.ssl_certfile, a.ssl_keyfile)
    elif a.cmd == "transcribe":
        keywords = [k.strip() for k in a.keywords.split(",") if k.strip()]
        cfg = STTConfig(provider=a.stt, model=a.stt_model, keywords=keywords)
        cfg.deepgram.base_url = a.deepgram_url
        from voxloop.batch.run import run as transcribe

        return await transcribe(a.paths, a.out, a.format, cfg, a.workers, not a.no_progress)
    elif a.cmd == "say":
        voice = TTSConfig(
            provider=a.tts, voice="joe" if a.tts.split(",")[0] == "piper" else "heart", speed=a.speed
        )
        voice.deepgram.base_url = a.deepgram_url
        path, seconds = await commands.say(a.text, a.out, voice)
        print(f"wrote {path} ({seconds:.2f} s of audio)")
    elif a.cmd == "bench" and a.bench == "tts-cache":
        from voxloop.bench import tts_cache as tts_cache_bench

        await tts_cache_bench.run(a)
    elif a.cmd == "bench" and a.bench == "load":
        from voxloop.bench.load_cli import dispatch

        await dispatch(a)
    elif a.cmd == "bench" and a.cpu_load < 0:
        raise VoxloopError(f"--cpu-load {a.cpu_load} is out of range", "use 0 or more busy processes")
    elif a.cmd == "bench" and a.bench == "latency":
        from voxloop.bench import latency

        await latency.run(a.corpus, a.out, _config(a), a.limit, not a.no_baseline, cpu_load=a.cpu_load)
    elif a.cmd == "bench" and a.bench == "wer":
        from voxloop.bench import wer as wer_bench

        if a.telephone:
            from voxloop.bench import telephone

            await telephone.run(a.corpus, a.out, _config(a), a.limit, cpu_load=a.cpu_load)
        else:
            await wer_bench.run(
                a.corpus, a.out, _config(a), a.limit, long=a.long, cpu_load=a.cpu_load, opus_kbps=a.opus_kbps
            )
    elif a.cmd == "bench" and a.bench == "turns":
        from voxloop.bench import turns

        chosen = tuple(x.strip() for x in a.scenarios.split(",") if x.strip()) or turns.SCENARIOS
        await turns.run(
            a.corpus, a.out, _config(a), a.trials, a.seed, chosen, cpu_load=a.cpu_load, telephone=a.telephone
        )
    elif a.cmd == "bench" and a.bench == "answers":
        from voxloop.bench import answers

        await answers.run(a.corpus, a.out, _config(a), a.limit, make=a.make_corpus)
    elif a.cmd == "bench" and a.bench == "faults":
        from voxloop.bench import faults

        corpus = a.corpus or Path(os.environ.get("VOXLOOP_CORPUS", "../shared/corpus"))
        kinds = tuple(x.strip() for x in a.kinds.split(",") if x.strip()) or faults.KINDS
        await faults.run(corpus, a.out, _config(a), a.limit, kinds, cpu_load=a.cpu_load)
    elif a.cmd == "models":
        print(commands.models(a.prepare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
