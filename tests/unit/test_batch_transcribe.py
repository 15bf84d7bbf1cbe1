"""voxloop transcribe's parts without a model: finding files, the four formats written and read
back, and the runner's handling of files that fail (a scripted engine stands in for Whisper)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxloop.audio.decode import duration_s, read_audio
from voxloop.batch.files import find_jobs
from voxloop.batch.formats import cues, render, timestamp
from voxloop.batch.run import transcribe_all
from voxloop.errors import AudioFormatError, VoxloopError
from voxloop.providers.base import Segment, Transcript, Word

SRT_TIME = r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d"

WORDS = tuple(
    Word(w, s, s + 0.4, 0.9)
    for w, s in [("Hello", 0.0), ("there.", 0.5), ("General", 61.0), ("Kenobi.", 61.5)]
)
TRANSCRIPT = Transcript(
    "Hello there. General Kenobi.",
    True,
    62.5,
    WORDS,
    (Segment("Hello there.", 0.0, 0.9), Segment("General Kenobi.", 61.0, 61.9)),
)


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_cues(text: str, time_re: str) -> list[tuple[float, float, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        at = next(i for i, line in enumerate(lines) if re.fullmatch(time_re, line))
        start, end = lines[at].split(" --> ")
        out.append((seconds(start), seconds(end), " ".join(lines[at + 1 :])))
    return out


def test_timestamps():
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3723.4567, ",") == "01:02:03,457"
    assert timestamp(-0.2) == "00:00:00.000"


def test_srt_read_back():
    text = render(TRANSCRIPT, "srt")
    blocks = text.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["1", "2"]  # numbered from 1
    assert parse_cues(text, SRT_TIME) == [(0.0, 0.9, "Hello there."), (61.0, 61.9, "General Kenobi.")]


def test_vtt_read_back():
    text = render(TRANSCRIPT, "vtt")
    assert text.startswith("WEBVTT\n\n")
    assert parse_cues(text[len("WEBVTT") :], VTT_TIME) == [
        (0.0, 0.9, "Hello there."),
        (61.0, 61.9, "General Kenobi."),
    ]


def test_json_and_txt_read_back():
    data = json.loads(render(TRANSCRIPT, "json", "a/b.wav"))
    assert data["source"] == "a/b.wav" and data["text"] == TRANSCRIPT.text and data["duration_s"] == 62.5
    assert [s["start"] for s in data["segments"]] == [0.0, 61.0]
    assert [(w["word"], w["start"], w["end"]) for w in data["words"]][2] == ("General", 61.0, 61.4)
    assert render(TRANSCRIPT, "txt") == "Hello there. General Kenobi.\n"


def test_long_segments_become_short_cues():
    words = tuple(Word(f"word{i}", i * 0.5, i * 0.5 + 0.4) for i in range(40))
    t = Transcript(" ".join(w.word for w in words), True, 20.0, words, (Segment("...", 0.0, 20.0),))
    got = cues(t)
    assert len(got) > 1
    assert all(len(c.text) <= 84 and c.end - c.start <= 7.0 for c in got)
    assert " ".join(c.text for c in got) == t.text  # every word once, in order


def test_no_segments_is_one_cue_and_silence_none():
    assert [c.text for c in cues(Transcript("hi there", True, 2.0))] == ["hi there"]
    assert render(Transcript("", True, 2.0), "srt") == ""


def test_find_jobs_mirrors_folders(tmp_path: Path):
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    for name in ("x.wav", "a/y.MP3", "a/b/z.ogg", "a/notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"")
    single = tmp_path / "one.flac"
    single.write_bytes(b"")
    jobs = find_jobs([tmp_path / "in", single])
    assert [str(j.rel) for j in jobs] == ["a/b/z.ogg", "a/y.MP3", "x.wav", "one.flac"]
    assert jobs[0].target(Path("out"), "srt") == Path("out/a/b/z.srt")


def test_find_jobs_errors(tmp_path: Path):
    with pytest.raises(VoxloopError, match="no audio file at"):
        find_jobs([tmp_path / "missing.wav"])
    with pytest.raises(VoxloopError, match="no audio files to transcribe"):
        find_jobs([tmp_path])
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "a.mp3").write_bytes(b"")
    with pytest.raises(VoxloopError, match="would write the same transcript"):
        find_jobs([tmp_path])


def test_read_audio_any_container_and_a_corrupt_file(tmp_path: Path):
    tone = (0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440)).astype(np.float32)
    sf.write(tmp_path / "t.flac", tone, 8000)
    x = read_audio(tmp_path / "t.flac", 16000)
    assert abs(len(x) - 16000) <= 2 and duration_s(tmp_path / "t.flac") == 1.0
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x01garbage" * 50)
    with pytest.raises(AudioFormatError, match="cannot decode"):
        read_audio(tmp_path / "bad.wav")
    assert duration_s(tmp_path / "bad.wav") == 0.0


class ScriptedEngine:
    """Fails on files named bad*, transcribes the rest as their name."""

    workers = 2

    async def load(self) -> None:
        pass

    async def transcribe(self, path: Path) -> Transcript:
        await asyncio.sleep(0)
        if path.name.startswith("bad"):
            raise AudioFormatError(f"cannot decode {path}: not audio")
        return Transcript(path.stem, True, 1.5, (), (Segment(path.stem, 0.0, 1.5),))

    async def aclose(self) -> None:
        pass


def test_runner_skips_failures_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    src = tmp_path / "in"
    (src / "d").mkdir(parents=True)
    for name in ("one.wav", "bad.wav", "d/two.wav", "d/bad2.wav"):
        (src / name).write_bytes(b"")
    report = asyncio.run(transcribe_all(find_jobs([src]), ScriptedEngine(), tmp_path / "out", "vtt", False))
    assert report.done == 2 and len(report.failures) == 2 and report.exit_code == 0
    assert (tmp_path / "out" / "d" / "two.vtt").read_text().startswith("WEBVTT")
    assert not (tmp_path / "out" / "bad.vtt").exists()
    err = capsys.readouterr().err
    assert "skipped" in err and "bad2.wav" in err and "not audio" in err
    summary = report.summary()
    assert summary.startswith("transcribed 2 of 4 files: 3.0 s of audio") and "2 failed" in summary


def test_runner_all_failed_is_exit_1(tmp_path: Path):
    (tmp_path / "bad.wav").write_bytes(b"")
    report = asyncio.run(transcribe_all(find_jobs([tmp_path]), ScriptedEngine(), None, "txt", False))
    assert report.done == 0 and report.exit_code == 1
