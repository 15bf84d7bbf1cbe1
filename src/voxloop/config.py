"""Settings, grouped per concern. Every field has a default that works offline on 2 CPU cores."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SYSTEM_PROMPT = (
    "You are Vox, a friendly voice assistant that runs entirely on this computer. "
    "Your words are spoken aloud, so answer in one or two short, plain sentences: "
    "no lists, no markdown, no emoji, no code. Be direct and warm. "
    "You cannot set timers, alarms or reminders, browse the web, check live facts such as the time, "
    "weather or news, send messages, make calls, play media, or control devices such as lights. "
    "When asked for one of those, say plainly that you can't do it and offer something you can do "
    "instead. Everything else you can do, so do it: answer questions, explain things, do arithmetic, "
    "give advice, tell a short story or a joke. If you don't know, say so."
)


@dataclass
class VADConfig:
    provider: str = "silero"
    threshold: float = 0.5  # speech when the probability reaches this
    neg_threshold: float = 0.35  # silence when it falls below this (hysteresis)


@dataclass
class RetryConfig:
    """How a cloud provider retries a failed request: at most `max_retries` more tries, after a
    jittered exponential back-off (`backoff_s` doubled each time, at most `backoff_max_s`) or the
    server's Retry-After; one asking for longer than `retry_after_max_s` is not waited for (the
    request fails, and a fallback chain moves on)."""

    max_retries: int = 3
    backoff_s: float = 0.25
    backoff_max_s: float = 2.0
    retry_after_max_s: float = 5.0


@dataclass
class DeepgramConfig:
    """`--stt deepgram` (Nova-3 over its streaming WebSocket) and `--tts deepgram` (Aura-2 over its
    WebSocket, its REST endpoint the fallback path). "" for the key and URL: $DEEPGRAM_API_KEY /
    $DEEPGRAM_BASE_URL (`--deepgram-url`), else https://api.deepgram.com. Every network wait has a
    deadline; failures are retried as `retry` says."""

    base_url: str = ""  # http(s):// or ws(s)://; "": $DEEPGRAM_BASE_URL, else Deepgram's own
    api_key: str = field(default="", repr=False)  # "": $DEEPGRAM_API_KEY
    stt_model: str = "nova-3"
    tts_model: str = "aura-2-thalia-en"
    tts_sample_rate: int = 24000  # linear16 at this rate (8000, 16000, 24000, 32000 or 48000)
    endpointing_ms: int = 300  # Deepgram's own end of speech (speech_final); voxloop decides turns itself
    utterance_end_ms: int = 1000
    smart_format: bool = True
    connect_timeout_s: float = 3.0  # the TCP/TLS connection and the WebSocket handshake
    send_timeout_s: float = 2.0  # a send blocked this long: the socket is stalled (reconnect)
    final_timeout_s: float = 1.5  # STT: no final this long after Finalize: stalled (replay, then the interim)
    keepalive_s: float = 4.0  # STT: a KeepAlive after this long without audio (Deepgram closes at 10 s)
    max_replay_s: float = 60.0  # STT: unconfirmed audio kept to replay on a new socket
    first_byte_timeout_s: float = 3.0  # TTS: no audio this long after a Flush (or between chunks): stalled
    # TTS: no first audio this long after the request: the same text over REST races the socket
    # (the first to give audio serves); 0: never. 0.5 s: a stalled socket costs 0.5 s plus REST's
    # first audio; healthy requests hedge rarely (bench faults' fault-free run, 2026-12-02: socket
    # first audio p99 84 ms, max 97 ms, n 83, on the local stand-in; set it above your endpoint's
    # own p99, which `bench faults` prints as "the cloud voice's first audio")
    tts_hedge_after_s: float = 0.5
    # STT: audio of the user's speech sent and no message back for this long: the socket is
    # stalled (reconnect, replay); pauses, KeepAlive and the wait after Finalize do not count; 0: off
    stall_timeout_s: float = 1.2
    # STT: this much of the user's speech sent with no message back (less than `stall_timeout_s`):
    # a second socket replays the unconfirmed audio and races the first; the first to answer
    # serves (providers/stt/deepgram_hedge.py); 0: never
    stall_hedge_after_s: float = 0.6
    # STT: no final this long after Finalize (less than `final_timeout_s`): a second socket replays
    # the turn's unconfirmed audio with its own Finalize and races the first, the first to answer
    # serving (a socket stalled at the turn's end costs this, not the deadline); 0: never
    final_hedge_after_s: float = 0.5
    retry: RetryConfig = field(default_factory=RetryConfig)


@dataclass
class STTConfig:
    provider: str = "whisper"
    model: str = "tiny.en"  # or "base": partial transcripts (and finals, see `final_model`)
    threads: int = 1  # one core; the LLM prefills the user's words on the other while they speak
    keywords: list[str] = field(default_factory=list)  # domain terms the recogniser is steered toward
    # the pause and final decodes the reply is built on, and the offline path ("": `model`).
    # base: streaming WER 0.149 vs 0.158 with tiny.en on the corpus clips, 0.139 vs 0.164 on long
    # turns, but each decode takes ~2.5x longer (pause decode p50 449 vs 193 ms): +~250 ms per reply
    final_model: str = ""
    # the final decodes of a long turn's later pieces (those after a committed one, the pause
    # decode at its end among them; "": `final_model`). Turns under `commit_min_s` never use it.
    # base there: long turns' errors tuning / validation 428 / 206 -> 419 / 186 (offline 415 /
    # 178), but the corpus clips' 504 / 304 -> 532 / 300 and long turns' replies ~0.65 s later
    # (`whisper.py`), so it is an option (`--stt-later-model base`)
    later_model: str = ""
    # When other processes keep at least `busy_cores` cores busy, the finals come from `model`
    # with `busy_final_beam_size`; or, with `busy_model` "moonshine", partials and finals from
    # Moonshine tiny (cheaper, and on the corpus no less accurate than tiny.en greedy, but
    # without word times: no re-hearing of a turn decided too early, no keywords)
    busy_cores: float = 0.5
    busy_model: str = ""
    busy_final_beam_size: int = 1
    partial_interval_s: float = 0.4  # re-decode the growing turn this often for partials
    short_window: bool = True  # encode only the audio so far (>= min_window_s), not a fixed 30 s
    min_window_s: float = 10.0
    beam_size: int = 1  # partial transcripts: greedy, they are only hints
    final_beam_size: int = 5  # the pause and final decodes the reply is built on (+30% decode time)
    # where a decode's words end, to see one that stopped early or skipped a clause: its words
    # aligned to the audio (cross-attention), or, for pieces at least `timestamps_from_s` long,
    # segment timestamps (corpus clips, whole-clip decodes: WER 0.147 aligned vs 0.163 timestamps)
    align_words: bool = True
    timestamps_from_s: float = float("inf")
    # a turn is decoded in pieces that end where the speaker paused (providers/stt/stream.py)
    # a pause after this much of the open piece makes its decode final (long turns, WER: 4 s 0.185,
    # 8 s 0.162, 12 s 0.153, never 0.144; a longer piece costs more to decode at the turn's end)
    commit_min_s: float = 12.0
    max_piece_s: float = 20.0  # speech with no pause for this long is cut at its quietest moment
    piece_context: bool = True  # each piece is decoded with the words before it as context
    # a long turn's committed pieces heard again as one stretch while the user speaks (Whisper;
    # long turns: validation errors -6%, v2v p50 +~230 ms; `--stt-no-stretch` turns it off)
    stretch: bool = True
    deepgram: DeepgramConfig = field(default_factory=DeepgramConfig)  # --stt deepgram


@dataclass
class OpenAIConfig:
    """`--llm openai`: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's
    server, voxloop serve). "" for the key and URL: $OPENAI_API_KEY / $OPENAI_BASE_URL."""

    model: str = "gpt-4o-mini"
    base_url: str = ""  # "": $OPENAI_BASE_URL, else https://api.openai.com/v1
    api_key: str = field(default="", repr=False)  # "": $OPENAI_API_KEY
    connect_timeout_s: float = 3.0  # the TCP/TLS connection
    first_token_timeout_s: float = 5.0  # from the request to the first words
    idle_timeout_s: float = 4.0  # between two pieces of the streamed reply
    # no first words this long: a second, identical request on a fresh connection races the first
    # (the first to speak serves, the other is cancelled); 0: never. The deadline above still ends both.
    hedge_after_s: float = 1.0
    # ... unless the server has answered the request (its headers, no words yet): it is working on
    # it, so the second request waits until this long after the first (a busy server is not loaded more)
    hedge_after_answer_s: float = 3.0
    retry: RetryConfig = field(default_factory=RetryConfig)


@dataclass
class FallbackConfig:
    """Fallback chains (`--llm openai,llama`): a member that failed past its retries is probed
    again after `cooldown_s` (doubled after each failed probe, at most `max_cooldown_s`, at least
    the Retry-After it was given); the probe has `probe_timeout_s`."""

    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0
    probe_timeout_s: float = 10.0


@dataclass
class LLMConfig:
    provider: str = "llama"  # or "openai", or a fallback chain such as "openai,llama"
    model: str = "qwen2.5-1.5b"  # or "qwen2.5-0.5b" (faster, wrong more often), "smollm2-135m"
    threads: int = 2
    prefill_threads: int = 1  # while the user speaks (the recogniser needs the other core)
    context: int = 2048  # tokens per conversation
    slots: int = 4  # conversations the local model keeps cached at once (more share them)
    max_tokens: int = 64  # a spoken answer: two short sentences
    temperature: float = 0.3
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    history_turns: int = 8  # user/agent exchanges kept in the prompt
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)


@dataclass
class TTSCacheConfig:
    """The TTS cache (providers/tts/cache): `location` "off", "disk" (the folder
    $XDG_CACHE_HOME/voxloop/tts, else ~/.cache/voxloop/tts), a folder, or redis://host:port/db.
    Off unless asked for; the speaking commands ask for "disk" by default (--tts-cache)."""

    location: str = "off"
    max_bytes: int = 256 * 1024 * 1024  # the disk backend's bound (Redis: its own maxmemory)
    memory_bytes: int = 32 * 1024 * 1024  # the most used lines also kept in the process (0: not)
    replies: str = "repeated"  # reply lines: "off", "repeated" (stored when said again) or "all"
    max_chars: int = 200  # longer reply lines are not cached
    fixed_lines: tuple[str, ...] = ()  # always cached, ready from the start (beside the fillers)
    redis_ttl_s: int = 30 * 24 * 3600


@dataclass
class TTSConfig:
    provider: str = "hibari"
    voice: str = "heart"  # hibari: heart; piper: joe
    speed: float = 1.0
    variation: float = 1.0  # Piper: scales its random prosody/noise (0: the same audio every time)
    loudness_dbfs: float = -20.0  # every chunk is brought to this speech level
    threads: int = 1
    deepgram: DeepgramConfig = field(default_factory=DeepgramConfig)  # --tts deepgram
    cache: TTSCacheConfig = field(default_factory=TTSCacheConfig)


@dataclass
class TurnConfig:
    min_speech_ms: int = 160  # this much speech starts a user turn
    pause_ms: int = 128  # silence after which the recogniser is told the speech paused
    end_silence_ms: int = 500  # silence after which the turn is decided
    unfinished_silence_ms: int = 1100  # ... when the words so far sound unfinished ("and", a comma)
    # the end-of-turn model (`--turn-model`): asked after `model_after_ms` of silence; at least
    # `model_threshold` ends the turn then, under `model_hold_below` holds it to
    # `unfinished_silence_ms`; in between the silence rules decide. Tuned on the corpus's tuning
    # part (benchmarks/turn_model.py): ending early cut readers off at every threshold that saved
    # time (0.5: 34 turns decided early against 14), so by default it only holds (above 1: never ends)
    # "auto": Smart Turn where installed (bench latency, 65 clips: turns decided early 23 -> 17,
    # tuning 15 -> 12, validation 8 -> 5; v2v p50 +13 ms, paired by clip +4 ms), else "none"
    model: str = "auto"
    model_after_ms: int = 200
    model_threshold: float = 2.0
    model_hold_below: float = 0.5
    # while other processes keep this many cores busy the model is not asked: its work would slow
    # the pause decode the reply waits for, and the reply comes so late then that waiting for it
    # (`ready_wait_ms`) holds every pause about as long (None: always ask)
    model_busy_cores: float | None = 0.5
    # adaptive silence: a user who goes on talking after their turn was decided paused longer than
    # the end silence mid-thought; wait that long (+ `patience_margin_ms`, at most
    # `max_end_silence_ms`) from then on, easing back halfway after each turn that really ended
    adaptive_silence: bool = True
    max_end_silence_ms: int = 1500
    patience_margin_ms: int = 150
    preroll_ms: int = 320  # audio kept from before the speech onset
    interruptions: bool = True  # user speech stops the agent (False: half duplex)
    echo_cancel: bool = True  # take the agent's own voice out of the microphone (needs a sink that
    # reports what it played: the WAV, virtual and device speakers do)
    barge_in_threshold: float = 0.4  # VAD probability that counts toward pausing the agent's voice
    barge_in_onset_ms: int = 32  # this much of it while the agent talks pauses its voice
    barge_in_soft_threshold: float = 0.15  # ... or a softer probability held for `barge_in_soft_ms`
    barge_in_soft_ms: int = 64  # (soft onsets after digital silence stay at 0.15-0.4 for 250 ms)
    interrupt_min_speech_ms: int = 1000  # ... this much is an interruption, whatever the words
    judge_silence_ms: int = 256  # a shorter burst is judged by its words after this much silence
    # watchdog: no stage may leave the caller in silence without a word or an event
    filler_after_s: float = 2.5  # no LLM token by then: say `filler_text`, keep waiting
    filler_text: str = "One moment."
    retry_filler_text: str = "Give me a second."  # said once when a provider's request is retried
    stage_timeout_s: float = 12.0  # a stage that produced nothing by then is abandoned (error event)
    playback_idle_ms: int = 250  # the speaker is finished once its queue has been empty this long
    playback_ceiling_s: float = 2.0  # ... or this long after the audio it was given should have ended
    first_clause_words: int = 3  # the first TTS request may end at a comma after this many words
    first_words: int = 3  # ... or after this many words, punctuation or not (0: never)
    # ... or after the words complete so far, once this long has passed since the first token (on a
    # busy machine a word can take 300 ms to generate: the voice starts on the first one or two)
    first_chunk_wait_ms: int = 400
    # ... or at once when tokens come this far apart (idle: 55-80 ms; beside two busy processes
    # 75-240 ms, where waiting for three words took ~430 ms at the p50)
    slow_token_ms: int = 100
    run_dry_ms: int = 500  # the voice has less than this left to say: the next request ends early too
    speculate: bool = True  # start the reply at a pause, play it only if the turn then ends
    # ... and decide the turn at its end silence only once that reply could be heard (its first
    # audio is ready), at the latest after this much silence: deciding sooner only gives the user
    # less time to go on, never an earlier answer (0: at the end silence, ready or not)
    ready_wait_ms: int = 1100
    prefill_partials: bool = True  # feed partial transcripts to the LLM while the user speaks


@dataclass
class ToolsConfig:
    """Tool calling (`--tools`): which tools, and how long the agent waits for them."""

    module: str = ""  # "demo", a dotted module or a .py file; empty: no tools
    kb_dir: str = ""  # the demo's knowledge base (empty: the built-in one)
    timeout_s: float = 5.0  # a tool still running after this is abandoned: the agent apologises
    filler_after_s: float = 0.7  # a tool still running after this: the agent says a filler
    filler_text: str = "Let me check."  # unless the tool has its own
    max_rounds: int = 3  # tool calls in a row in one turn before the agent gives up
    apology_text: str = "Sorry, I couldn't get that for you just now."
    give_up_text: str = "Sorry, I couldn't finish that."  # after `max_rounds`


@dataclass
class PrivacyConfig:
    """Personal data (emails, phone, card and social security numbers, IBANs, IP addresses, dates
    of birth) masked as [EMAIL], [PHONE]... by `voxloop.redact`."""

    redact_logs: bool = False  # in log lines, the events subscribers get, and turns.jsonl
    redact_llm: bool = False  # in the user's words before the LLM (the history keeps them masked)


@dataclass
class AgentConfig:
    vad: VADConfig = field(default_factory=VADConfig)
    stt: STTConfig = field(default_factory=STTConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
