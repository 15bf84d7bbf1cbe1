"""The Moonshine provider without its model: the tokenizer file, token ids to text, the token cap
and the greedy loop's cache handling (on scripted stand-ins for the two onnxruntime sessions)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxloop.providers.stt.moonshine import (
    END,
    START,
    TAIL_S,
    MoonshineSTT,
    loudest_dbfs,
    max_tokens,
    no_speech_filtered,
    read_tokens,
    tokens_to_text,
)

SPACE = "\u2581".encode()
# ids 0-2 special, then a few pieces; 7 and 8 are the two bytes of "é" (byte-fallback tokens)
VOCAB = [b"<unk>", b"<s>", b"</s>", SPACE + b"Turn", SPACE + b"on", b"!", SPACE + b"caf", b"\xc3", b"\xa9"]


def tokenizer_file(tmp_path: Path, tokens: list[bytes]) -> Path:
    data = bytearray()
    for t in tokens:
        n = len(t)
        data += bytes([n]) if n < 128 else bytes([128 + n % 128, n // 128])
        data += t
    path = tmp_path / "tokenizer.bin"
    path.write_bytes(bytes(data))
    return path


def test_read_tokens_in_id_order(tmp_path: Path) -> None:
    long = b"x" * 300  # a two-byte length
    assert read_tokens(tokenizer_file(tmp_path, [*VOCAB, b"", long, b"end"])) == [*VOCAB, b"", long, b"end"]


def test_tokens_to_text_spaces_bytes_and_specials() -> None:
    assert tokens_to_text([3, 4, 5, END], VOCAB) == "Turn on!"
    # a character split over two byte tokens is whole again; the start, end and unknown ids vanish
    assert tokens_to_text([START, 6, 7, 8, 0, END], VOCAB) == "café"
    assert tokens_to_text([7, END], VOCAB) == "\ufffd"  # half a character: a replacement, no crash
    assert tokens_to_text([], VOCAB) == ""


def test_control_tokens_are_not_text() -> None:
    vocab = [*VOCAB, *([b"pad"] * (32000 - len(VOCAB))), b"<<ST_0>>"]
    assert tokens_to_text([3, 32000, 4], vocab) == "Turn on"


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from voxloop import models
    from voxloop.errors import ModelMissing

    spec = models.MODELS["moonshine-tiny"]
    monkeypatch.setitem(models.MODELS, "moonshine-tiny", replace(spec, file=("vxtest_no_moonshine", "x")))
    stt = MoonshineSTT()
    with pytest.raises(ModelMissing) as e:
        asyncio.run(stt.load())
    asyncio.run(stt.aclose())
    assert e.value.hint == "install it with: pip install --no-deps moonshine-voice==0.1.0"


def test_the_real_tokenizer_if_installed() -> None:
    from voxloop.errors import ModelMissing
    from voxloop.models import model_path

    try:
        folder = model_path("moonshine-tiny")
    except ModelMissing as e:
        pytest.skip(f"moonshine-voice is not installed: {e.hint}")
    vocab = read_tokens(folder / "tokenizer.bin")
    assert len(vocab) == 32768
    assert vocab[:3] == [b"<unk>", b"<s>", b"</s>"]
    turn = vocab.index(SPACE + b"Turn")
    assert tokens_to_text([START, turn, END], vocab) == "Turn"


@pytest.mark.parametrize(
    ("seconds", "cap"),
    [(0.0, 10), (1.0, 10), (2.0, 13), (3.0, 20), (10.0, 65), (20.0, 130)],
)
def test_token_cap_follows_the_audio_length(seconds: float, cap: int) -> None:
    assert max_tokens(int(seconds * 16000)) == cap


@pytest.mark.parametrize(
    ("text", "kept"),
    [("You", ""), ("you.", ""), ("♪", ""), ("...", ""), ("", ""), ("You too.", "You too."), ("Yes.", "Yes.")],
)
def test_no_speech_answers_become_empty(text: str, kept: str) -> None:
    assert no_speech_filtered(text) == kept


def test_loudest_dbfs() -> None:
    quiet = np.full(16000, 0.001, np.float32)
    assert loudest_dbfs(quiet) == pytest.approx(-60.0, abs=0.1)
    quiet[8000:9600] = 0.1  # 100 ms at -20 dBFS
    assert loudest_dbfs(quiet) == pytest.approx(-20.0, abs=0.1)
    assert loudest_dbfs(np.zeros(100, np.float32)) < -100


# -- the greedy loop, on stand-ins for the sessions ------------------------------------------------
class _Arg:
    def __init__(self, name: str, shape: list[Any]) -> None:
        self.name, self.shape = name, shape


class FakeEncoder:
    def __init__(self) -> None:
        self.heard: list[np.ndarray] = []

    def run(self, _: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.heard.append(feeds["input_values"][0])
        frames = max(1, feeds["input_values"].shape[1] // 640)
        return [np.zeros((1, frames, 288), np.float32)]


class FakeDecoder:
    """Says `script` token by token, then `forever` at every later step. `feeds`: the last decode's."""

    LAYERS = ("0.decoder.key", "0.decoder.value", "0.encoder.key", "0.encoder.value")

    def __init__(self, script: list[int], forever: int = 4) -> None:
        self.script, self.forever = script, forever
        self.feeds: list[dict[str, np.ndarray]] = []

    def get_inputs(self) -> list[_Arg]:
        return [_Arg(f"past_key_values.{n}", ["batch", 8, "len", 36]) for n in self.LAYERS]

    def get_outputs(self) -> list[_Arg]:
        return [_Arg("logits", []), *(_Arg(f"present.{n}", []) for n in self.LAYERS)]

    def run(self, _: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not feeds["use_cache_branch"][0]:
            self.feeds = []  # a new decode
        step = len(self.feeds)
        self.feeds.append(feeds)
        token = self.script[step] if step < len(self.script) else self.forever
        logits = np.zeros((1, 1, len(VOCAB)), np.float32)
        logits[0, 0, token] = 1.0
        # each present.* holds the step that made it, so the test can see which were fed back
        presents = [np.full((1, 8, step + 1, 36), step, np.float32) for _ in self.LAYERS]
        return [logits, *presents]


def fake_stt(decoder: FakeDecoder) -> MoonshineSTT:
    stt = MoonshineSTT()
    stt._encoder, stt._decoder, stt._vocab = FakeEncoder(), decoder, VOCAB
    stt._past = {a.name: (1, a.shape[1], 1, a.shape[3]) for a in decoder.get_inputs()}
    stt._present = [o.name for o in decoder.get_outputs()[1:]]
    return stt


def test_decoding_stops_at_the_end_token() -> None:
    dec = FakeDecoder([3, 4, 5, END])
    stt = fake_stt(dec)
    audio = np.full(32000, 0.1, np.float32)
    assert stt.generate(audio) == [3, 4, 5, END]
    assert stt.decode(audio) == "Turn on!"


def test_the_speech_is_heard_to_stop() -> None:
    stt = fake_stt(FakeDecoder([3, END]))
    audio = np.full(16000, 0.1, np.float32)
    stt.decode(audio)
    heard = stt._encoder.heard[-1]
    assert len(heard) == 16000 + int(TAIL_S * 16000)
    assert np.array_equal(heard[:16000], audio) and not heard[16000:].any()


def test_a_decode_that_never_ends_stops_at_the_cap() -> None:
    dec = FakeDecoder([3], forever=4)  # "Turn on on on on ..."
    stt = fake_stt(dec)
    audio = np.full(3 * 16000, 0.1, np.float32)
    ids = stt.generate(audio)
    assert len(ids) == len(dec.feeds) == max_tokens(len(audio)) == 20
    assert END not in ids


def test_the_cache_fed_back() -> None:
    dec = FakeDecoder([3, 4, 5, END])
    fake_stt(dec).generate(np.full(16000, 0.1, np.float32))
    first, *later = dec.feeds
    assert first["use_cache_branch"].tolist() == [False] and first["input_ids"].tolist() == [[START]]
    assert first["past_key_values.0.decoder.key"].shape == (1, 8, 1, 36)  # a placeholder
    for step, feeds in enumerate(later, 1):
        assert feeds["use_cache_branch"].tolist() == [True]
        # the self-attention cache comes from the step before; the cross-attention one from step 0
        assert feeds["past_key_values.0.decoder.value"].shape[2] == step
        assert float(feeds["past_key_values.0.decoder.value"].max()) == step - 1
        assert float(feeds["past_key_values.0.encoder.key"].max()) == 0
    assert [int(f["input_ids"][0, 0]) for f in later] == [3, 4, 5]


def test_silence_and_scraps_are_not_decoded() -> None:
    dec = FakeDecoder([3, END])
    stt = fake_stt(dec)
    assert stt.decode(np.zeros(16000, np.float32)) == ""  # silence
    assert stt.decode(np.full(16000, 0.002, np.float32)) == ""  # -54 dBFS: quieter than any speech
    assert stt.decode(np.full(1000, 0.1, np.float32)) == ""  # 0.06 s
    assert dec.feeds == []  # the model never ran
    assert stt.decode(np.full(16000, 0.1, np.float32)) == "Turn"
