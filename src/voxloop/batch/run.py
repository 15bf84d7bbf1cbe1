"""`voxloop transcribe`: every file through the engine, `workers` at a time, with a progress bar in
seconds of audio; a file that fails is reported on stderr and skipped, the rest go on.

Exit status: 0 when at least one file was transcribed (failures are listed in the summary line),
1 when every file failed, 2 for a usage error (a path that does not exist, no audio found).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from voxloop.audio.decode import duration_s
from voxloop.batch.engine import Engine, make_engine
from voxloop.batch.files import Job, find_jobs
from voxloop.batch.formats import render
from voxloop.config import STTConfig
from voxloop.errors import VoxloopError
from voxloop.providers.base import Transcript

log = logging.getLogger("voxloop.batch")


@dataclass(frozen=True)
class Failure:
    job: Job
    reason: str


@dataclass
class Report:
    files: int
    done: int = 0
    audio_s: float = 0.0  # of the files transcribed
    wall_s: float = 0.0  # from the first file started to the last finished (model loaded)
    failures: list[Failure] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.files and self.done == 0 else 0

    def summary(self) -> str:
        speed = self.audio_s / self.wall_s if self.wall_s > 0 else 0.0
        line = (
            f"transcribed {self.done} of {self.files} files: {self.audio_s:.1f} s of audio "
            f"in {self.wall_s:.1f} s ({speed:.1f} audio seconds per second)"
        )
        if self.failures:
            names = ", ".join(str(f.job.src) for f in self.failures)
            line += f"; {len(self.failures)} failed: {names}"
        return line


async def transcribe_all(
    jobs: list[Job], engine: Engine, out: Path | None, fmt: str, progress: bool = True
) -> Report:
    """Transcribe `jobs`, `engine.workers` at a time, writing each one's transcript under `out`
    (None: printed to stdout)."""
    seconds = await asyncio.to_thread(lambda: [duration_s(j.src) for j in jobs])
    report = Report(len(jobs))
    todo = iter(zip(jobs, seconds, strict=True))
    bar = tqdm(
        total=round(sum(seconds), 1),
        unit="s",
        desc="transcribing",
        file=sys.stderr,
        disable=None if progress else True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]",
    )

    async def worker() -> None:
        for job, probed in todo:  # shared iterator: each file taken once
            t = await _one(job, engine, report, bar)
            if t is not None:
                await asyncio.to_thread(_write, job, t, out, fmt, sys.stdout)
            bar.update(round(t.audio_s if t is not None else probed, 1))

    t0 = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(engine.workers, len(jobs))):
                tg.create_task(worker())
    finally:
        bar.close()
    report.wall_s = time.perf_counter() - t0
    return report


async def _one(job: Job, engine: Engine, report: Report, bar: tqdm[object]) -> Transcript | None:
    try:
        t = await engine.transcribe(job.src)
    except VoxloopError as e:
        reason = e.message
    except Exception as e:  # a recogniser's own failure on one file must not stop the others
        log.debug("transcribing %s failed", job.src, exc_info=True)
        reason = f"{type(e).__name__}: {e}"
    else:
        report.done += 1
        report.audio_s += t.audio_s
        return t
    report.failures.append(Failure(job, reason))
    bar.write(f"voxloop: skipped {job.src}: {reason}", file=sys.stderr)
    return None


def _write(job: Job, t: Transcript, out: Path | None, fmt: str, stdout: TextIO) -> None:
    text = render(t, fmt, str(job.src))
    if out is None:
        stdout.write(text)
        stdout.flush()
        return
    path = job.target(out, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def run(
    paths: list[Path], out: Path | None, fmt: str, config: STTConfig, workers: int = 0, progress: bool = True
) -> int:
    """The command: find the files, load the recogniser, transcribe, print the summary; returns
    the exit status."""
    jobs = find_jobs(paths)
    if out is None and len(jobs) > 1:
        raise VoxloopError(
            f"{len(jobs)} files to transcribe and nowhere to write them",
            "give --out DIR (one transcript per file, mirroring the folders)",
        )
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # a line per file: the bar says it
    engine = make_engine(config, workers)
    await engine.load()
    try:
        report = await transcribe_all(jobs, engine, out, fmt, progress)
    finally:
        await engine.aclose()
    print(report.summary(), file=sys.stderr)
    return report.exit_code
