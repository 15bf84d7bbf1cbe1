"""The installed `voxloop` command, run as a subprocess (each run loads its own models: keep few)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from .conftest import LAMP, Corpus
from .helpers import missing_words

pytestmark = pytest.mark.integration

VOXLOOP = Path(sys.executable).parent / "voxloop"


def voxloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not VOXLOOP.is_file():
        pytest.skip(f"the voxloop command is not installed beside {sys.executable}: pip install -e .")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # The timeout only guards against a hang; it is no claim about speed.
    return subprocess.run(
        [str(VOXLOOP), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_say_writes_a_24khz_wav(tmp_path: Path):
    r = voxloop("say", "Hello there.", "-o", "hello.wav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    info = sf.info(str(tmp_path / "hello.wav"))
    assert info.samplerate == 24000 and info.channels == 1
    assert info.duration > 0.3
    assert "hello.wav" in r.stdout


def test_say_refuses_empty_text(tmp_path: Path):
    r = voxloop("say", "", cwd=tmp_path)
    assert r.returncode == 2
    assert "voxloop: error: nothing to say" in r.stderr
    assert not (tmp_path / "say.wav").exists()


def test_transcribe_prints_the_words(tmp_path: Path, corpus: Corpus):
    clip = corpus.clip(LAMP)
    r = voxloop("transcribe", str(clip.path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not missing_words(r.stdout, [clip.transcript]), r.stdout


def test_transcribe_a_missing_file_is_a_clear_error(tmp_path: Path):
    r = voxloop("transcribe", "missing.wav", cwd=tmp_path)
    assert r.returncode == 2
    assert "voxloop: error: no audio file at missing.wav" in r.stderr
    assert "Traceback" not in r.stderr


def test_talk_without_an_audio_device_is_a_clear_error(tmp_path: Path):
    r = voxloop("talk", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "voxloop: error:" in r.stderr and "Traceback" not in r.stderr
    # No PortAudio: the hint installs it; PortAudio but no device: the hint names the WAV route.
    assert "apt-get install libportaudio2" in r.stderr or "voxloop run --in" in r.stderr, r.stderr[-2000:]


def test_demo_help(tmp_path: Path):
    r = voxloop("demo", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--out" in r.stdout and "--half-duplex" in r.stdout
