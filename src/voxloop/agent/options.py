"""The agent's command-line options (models, turn-taking, tools, privacy) and the `AgentConfig`
they make, for the commands that run the agent (demo, run, talk, serve, the benchmarks)."""

from __future__ import annotations

import argparse

from voxloop.config import AgentConfig, LLMConfig, OpenAIConfig, STTConfig, TTSConfig, TurnConfig
from voxloop.errors import VoxloopError
from voxloop.providers.options import add_stt_choice, provider_type, voice_name
from voxloop.providers.tts.cache import options as tts_cache_options
from voxloop.providers.turn import TURN_MODEL_HELP, TURN_MODELS
from voxloop.redact import command as redact_command

LOCAL_LLMS = ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m")
PROFILES = ("default", "fastest")


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    add_stt_choice(g)
    g.add_argument("--stt-model", default=STTConfig.model, choices=["tiny.en", "base"], help="for whisper")
    g.add_argument(
        "--stt-final-model",
        default=STTConfig.final_model,
        choices=["", "tiny.en", "base"],
        help="for whisper: the model of the final transcripts (default: --stt-model); base is more "
        "accurate and ~250 ms slower per reply",
    )
    g.add_argument(
        "--stt-later-model",
        default=STTConfig.later_model,
        choices=["", "tiny.en", "base"],
        help="for whisper: the model of a long turn's pieces after its first 12 s (default: "
        "--stt-final-model); base hears long turns better (validation errors -10%%) and answers "
        "them ~0.65 s later",
    )
    g.add_argument(
        "--stt-busy-model",
        default=STTConfig.busy_model,
        choices=["", "moonshine"],
        help="for whisper: who hears while other processes keep the cores busy: '' (tiny.en, greedy "
        "finals) or moonshine (faster beside busy processes: bench latency --cpu-load 2 p50 -15%%; "
        "no word times, so a turn decided too early is not heard again, and no --keywords)",
    )
    g.add_argument("--keywords", default="", help="comma-separated domain terms to steer the recogniser to")
    g.add_argument(
        "--llm",
        default=LLMConfig.provider,
        type=provider_type("llm"),
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
        type=provider_type("tts"),
        help="the agent's voice: hibari, piper or deepgram (Aura-2); a comma list is a fallback chain",
    )
    g.add_argument(
        "--stt-beam",
        type=int,
        default=STTConfig.final_beam_size,
        help="beam width of the recogniser's final decodes (1: greedy)",
    )
    g.add_argument(
        "--stt-no-stretch",
        action="store_true",
        help="do not hear a long turn's pieces again as one stretch (a long turn's reply starts "
        "sooner, heard less well)",
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
        "--profile",
        default="default",
        choices=PROFILES,
        help="fastest: Moonshine hears, Qwen2.5 0.5B answers, Smart Turn ends a turn it finds "
        "complete after 200 ms of silence and the first word goes to the voice at once (--stt, "
        "--llm-model and --turn-model given as well still decide; answers are wrong more often and "
        "readers who pause are cut off more: see the README's latency table)",
    )
    p.add_argument(
        "--tools", default="", help="tools the agent may call: demo, a dotted module or a .py file"
    )
    p.add_argument("--kb", default="", help="--tools demo: a folder of .txt files for its knowledge base")
    redact_command.add_options(p)


def config(a: argparse.Namespace) -> AgentConfig:
    """The agent's config from `add_options`' options (and the TTS cache's, where the command has them)."""
    cfg = AgentConfig()
    cfg.stt.provider, cfg.stt.model, cfg.stt.threads = a.stt, a.stt_model, a.stt_threads
    if not 1 <= a.stt_beam <= 10:
        raise VoxloopError(f"--stt-beam {a.stt_beam} is out of range", "use 1 (greedy) to 10")
    cfg.stt.final_beam_size = a.stt_beam
    cfg.stt.final_model = a.stt_final_model
    cfg.stt.busy_model = a.stt_busy_model
    cfg.stt.later_model = a.stt_later_model
    cfg.stt.stretch = not a.stt_no_stretch
    cfg.turn.adaptive_silence, cfg.turn.model = not a.fixed_silence, a.turn_model
    cfg.stt.keywords = [k.strip() for k in a.keywords.split(",") if k.strip()]
    llm_choice(cfg.llm, a.llm, a.llm_model, a.openai_base_url)
    cfg.llm.threads = a.llm_threads
    cfg.tts.provider = a.tts
    cfg.tts.voice = voice_name(a.tts)
    cfg.stt.deepgram.base_url = a.deepgram_url
    cfg.tts.deepgram = cfg.stt.deepgram  # one Deepgram account and server for both
    cfg.turn.end_silence_ms = a.end_silence_ms
    cfg.turn.interruptions = not a.half_duplex
    cfg.tts.cache = tts_cache_options.from_args(a)
    cfg.tools.module, cfg.tools.kb_dir = a.tools, a.kb
    cfg.privacy = redact_command.privacy(a)
    if a.profile == "fastest":
        fastest(cfg, a)
    return cfg


def fastest(cfg: AgentConfig, a: argparse.Namespace) -> None:
    """`--profile fastest`: each stage's fastest choice. Moonshine tiny decodes a corpus clip in
    167 ms (p50, one thread) against 232 for tiny.en's final beam, the 0.5B model makes tokens 2x
    faster than the 1.5B, Smart Turn ends a
    turn it scores complete (0.5 or more) after 200 ms of silence instead of 500, and the first
    word goes to the voice as soon as the next one begins."""
    if a.stt == STTConfig.provider:  # options left at their defaults take the profile's choice
        cfg.stt.provider = "moonshine"
    if not a.llm_model and cfg.llm.provider == "llama":
        cfg.llm.model = "qwen2.5-0.5b"
    if a.turn_model == TurnConfig.model:
        cfg.turn.model = "smart-turn"
    cfg.turn.model_threshold = 0.5
    cfg.turn.first_words = 1


def llm_choice(cfg: LLMConfig, provider: str, model: str, base_url: str) -> None:
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
