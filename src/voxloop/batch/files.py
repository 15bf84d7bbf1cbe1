"""The audio files a `voxloop transcribe` run takes, and the relative path each one's transcript
mirrors under `--out`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from voxloop.errors import VoxloopError

AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .ogg .oga .opus .mp3 .m4a .aac .mp4 .webm .mka .aif .aiff .amr .wma .caf .au".split()
)


@dataclass(frozen=True)
class Job:
    """One file to transcribe: where it is, and its path relative to the folder it was found in
    (a file named on the command line: its name)."""

    src: Path
    rel: Path

    def target(self, out: Path, fmt: str) -> Path:
        """Where its transcript in `fmt` goes under `out`: the same relative path, `.fmt` for the
        audio's extension."""
        return out / self.rel.with_suffix(f".{fmt}")


def find_jobs(paths: Iterable[Path]) -> list[Job]:
    """Every file named, and every audio file (by extension) under every folder named, recursively,
    in name order. A path that does not exist is an error; so is a run with no audio at all, or
    two inputs whose transcripts would land on the same path."""
    jobs: list[Job] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            jobs += [Job(f, f.relative_to(p)) for f in found]
        elif p.is_file():
            jobs.append(Job(p, Path(p.name)))
        else:
            raise VoxloopError(f"no audio file at {p}", "check the path: give audio files or folders of them")
    if not jobs:
        exts = " ".join(sorted(AUDIO_EXTENSIONS))
        raise VoxloopError("no audio files to transcribe", f"folders are searched for: {exts}")
    seen: dict[Path, Job] = {}
    for j in jobs:
        key = j.rel.with_suffix("")
        if key in seen:
            raise VoxloopError(
                f"{seen[key].src} and {j.src} would write the same transcript ({key}.*)",
                "transcribe them in separate runs, or into separate --out folders",
            )
        seen[key] = j
    return jobs
