"""A transcript as json, txt, srt or vtt.

Subtitles (srt, vtt) are cut into cues from the words' times where the recogniser gave them: a cue
ends at a segment's end, before it would pass `CUE_CHARS` characters or `CUE_S` seconds; without
word times each segment is one cue, and without segments the whole text is one.
"""

from __future__ import annotations

import json
from typing import Any

from voxloop.providers.base import Segment, Transcript, Word

FORMATS = ("json", "txt", "srt", "vtt")
CUE_CHARS = 84  # two lines of 42, the usual subtitle limit
CUE_S = 7.0


def render(t: Transcript, fmt: str, source: str = "") -> str:
    """`t` as the text of a `fmt` file; `source` (the audio's path) goes into json."""
    if fmt == "json":
        return json.dumps(as_json(t, source), indent=2, ensure_ascii=False) + "\n"
    if fmt == "txt":
        return t.text.strip() + "\n"
    if fmt == "srt":
        return "".join(
            f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n{c.text}\n\n"
            for i, c in enumerate(cues(t), 1)
        )
    if fmt == "vtt":
        body = "".join(f"{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n\n" for c in cues(t))
        return "WEBVTT\n\n" + body
    raise ValueError(f"unknown transcript format {fmt!r}; use one of {', '.join(FORMATS)}")


def as_json(t: Transcript, source: str = "") -> dict[str, Any]:
    r3 = lambda v: round(v, 3)  # noqa: E731 - milliseconds are plenty
    return {
        "source": source,
        "duration_s": r3(t.audio_s),
        "text": t.text,
        "segments": [
            {"start": r3(s.start), "end": r3(s.end), "text": s.text, "avg_logprob": r3(s.avg_logprob)}
            for s in t.segments
        ],
        "words": [
            {"word": w.word, "start": r3(w.start), "end": r3(w.end), "probability": r3(w.confidence)}
            for w in t.words
        ],
    }


def timestamp(seconds: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (vtt) or, with sep ",", HH:MM:SS,mmm (srt)."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(t: Transcript) -> list[Segment]:
    """The subtitle cues of `t` (Segment: text and times), in order, none empty."""
    if not t.segments:
        return [Segment(t.text.strip(), 0.0, t.audio_s)] if t.text.strip() else []
    own: list[list[Word]] = [[] for _ in t.segments]
    for w in t.words:  # each word to the last segment that starts before it
        i = max((k for k, s in enumerate(t.segments) if s.start <= w.start + 0.05), default=0)
        own[i].append(w)
    out: list[Segment] = []
    for seg, words in zip(t.segments, own, strict=True):
        out += _split(seg, words) if words else [seg]
    return [c for c in out if c.text]


def _split(seg: Segment, words: list[Word]) -> list[Segment]:
    out: list[Segment] = []
    run: list[Word] = []
    for w in words:
        text = " ".join(x.word for x in [*run, w])
        if run and (len(text) > CUE_CHARS or w.end - run[0].start > CUE_S):
            out.append(_cue(run))
            run = []
        run.append(w)
    if run:
        out.append(_cue(run))
    return out


def _cue(words: list[Word]) -> Segment:
    return Segment(" ".join(w.word for w in words), words[0].start, max(words[-1].end, words[0].start))
