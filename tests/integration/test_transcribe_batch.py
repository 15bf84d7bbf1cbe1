"""`voxloop transcribe` on a folder of corpus clips and a corrupt file, with real Whisper: every
format written, read back and checked against the clips' transcripts; the corrupt file is
reported and skipped; a run where every file fails exits 1."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from voxloop.batch.engine import WhisperEngine
from voxloop.batch.files import find_jobs
from voxloop.batch.run import transcribe_all
from voxloop.config import STTConfig
from voxloop.errors import MissingExtra, ModelMissing

from .conftest import LAMP, Arun, Corpus
from .helpers import missing_words
from .test_cli import voxloop

pytestmark = pytest.mark.integration
CLIPS = {LAMP: "", "pocketsphinx_goforward": "nested", "1688-142285-0002": "nested/deeper"}
SRT_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
VTT_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


@pytest.fixture()
def folder(tmp_path: Path, corpus: Corpus) -> Path:
    """Corpus clips (links, not copies) in nested folders, a corrupt .wav and a text file."""
    root = tmp_path / "voicemail"
    for clip_id, sub in CLIPS.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / f"{clip_id}.wav").symlink_to(corpus.clip(clip_id).path)
    (root / "nested" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (root / "nested" / "readme.txt").write_text("not audio")
    return root


def cue_times(text: str, line: re.Pattern[str]) -> list[tuple[float, float]]:
    out = []
    for m in filter(None, map(line.match, text.splitlines())):
        g = [int(x) for x in m.groups()]
        out.append(
            (g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000)
        )
    return out


def test_cli_folder_json_skips_the_corrupt_file(tmp_path: Path, folder: Path, corpus: Corpus):
    r = voxloop("transcribe", str(folder), "--out", "out", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"voxloop: skipped {folder / 'nested' / 'corrupt.wav'}: cannot decode" in r.stderr
    assert "transcribed 3 of 4 files" in r.stderr and "1 failed:" in r.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert written == [
        "nested",
        "nested/deeper",
        "nested/deeper/1688-142285-0002.json",
        "nested/pocketsphinx_goforward.json",
        f"{LAMP}.json",
    ]
    for clip_id, sub in CLIPS.items():
        data = json.loads((tmp_path / "out" / sub / f"{clip_id}.json").read_text())
        expected = corpus.clip(clip_id).transcript
        assert len(missing_words(data["text"], [expected])) <= 1, (data["text"], expected)  # "ten"/"10"
        assert data["segments"] and data["words"]
        times = [(w["start"], w["end"]) for w in data["words"]]
        assert all(0 <= s <= e <= data["duration_s"] + 0.5 for s, e in times), times
        assert [s for s, _ in times] == sorted(s for s, _ in times)


def test_cli_all_failed_exits_1(tmp_path: Path):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 100)
    r = voxloop("transcribe", "bad.wav", "--out", "out", cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "transcribed 0 of 1 files" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("fmt", ["srt", "vtt", "txt"])
def test_every_format_read_back(
    fmt: str, tmp_path: Path, folder: Path, corpus: Corpus, engine: WhisperEngine, arun: Arun[Any]
):
    report = arun(transcribe_all(find_jobs([folder]), engine, tmp_path / "out", fmt, progress=False))
    assert report.done == 3 and [f.job.src.name for f in report.failures] == ["corrupt.wav"]
    for clip_id, sub in CLIPS.items():
        text = (tmp_path / "out" / sub / f"{clip_id}.{fmt}").read_text()
        duration = sf.info(str(corpus.clip(clip_id).path)).duration
        if fmt == "txt":
            words = text
        else:
            line = SRT_LINE if fmt == "srt" else VTT_LINE
            times = cue_times(text, line)
            assert times, text
            assert all(0 <= s <= e <= duration + 0.5 for s, e in times), times
            assert all(a[1] <= b[0] + 0.01 for a, b in zip(times, times[1:], strict=False)), times
            if fmt == "vtt":
                assert text.startswith("WEBVTT\n\n")
            else:
                assert text.split("\n", 1)[0] == "1"
            words = " ".join(ln for ln in text.splitlines() if ln and not line.match(ln) and not ln.isdigit())
        expected = corpus.clip(clip_id).transcript
        assert len(missing_words(words, [expected])) <= 1, (words, expected)


@pytest.fixture(scope="module")
def engine(arun: Arun[Any]) -> Any:
    e = WhisperEngine(STTConfig(model="tiny.en"), 2)
    try:
        arun(e.load())
    except (ModelMissing, MissingExtra) as err:
        pytest.skip(f"Whisper is not installed: {err.message} ({err.hint})")
    yield e
    arun(e.aclose())
