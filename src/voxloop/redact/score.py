"""Scoring `find` on a corpus file: one utterance a line, `<<KIND:text>>` around each piece of
personal data (lines without marks are near-misses), `#` lines are comments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from voxloop.redact import find
from voxloop.redact.spans import Find, mask

MARK = re.compile(r"<<([A-Z]+):(.*?)>>")


@dataclass
class Line:
    text: str  # the utterance as said
    spans: list[Find]  # where its personal data is

    @property
    def expected(self) -> str:
        return mask(self.text, self.spans)


@dataclass
class Score:
    expected: int = 0  # marked spans
    found: int = 0  # spans `find` masked
    exact: int = 0  # masked with the right kind and the exact extent
    leaks: list[str] = field(default_factory=list)  # marked spans left partly or wholly unmasked
    false_masks: list[str] = field(default_factory=list)  # masks over text that was not marked
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # (line, expected, got)
    lines: int = 0

    @property
    def precision(self) -> float:
        return self.exact / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.exact / self.expected if self.expected else 1.0

    def summary(self) -> str:
        return (
            f"{self.lines} lines, {self.expected} marked spans, {self.found} masked, {self.exact} exact: "
            f"precision {self.precision:.3f}, recall {self.recall:.3f}; {len(self.leaks)} leaks, "
            f"{len(self.false_masks)} ordinary spans masked, {len(self.wrong)} lines not as expected"
        )


def parse(line: str) -> Line:
    text, spans, at = "", [], 0
    for m in MARK.finditer(line):
        text += line[at : m.start()]
        spans.append(Find(len(text), len(text) + len(m.group(2)), m.group(1)))
        text += m.group(2)
        at = m.end()
    return Line(text + line[at:], spans)


def load(path: Path) -> list[Line]:
    raw = path.read_text(encoding="utf-8").splitlines()
    return [parse(x) for x in raw if x.strip() and not x.startswith("#")]


def score(lines: list[Line]) -> Score:
    s = Score()
    for ln in lines:
        got = find(ln.text)
        s.lines += 1
        s.expected += len(ln.spans)
        s.found += len(got)
        s.exact += len(set(got) & set(ln.spans))
        for e in ln.spans:
            covered = sum(
                min(e.end, g.end) - max(e.start, g.start) for g in got if g.start < e.end and g.end > e.start
            )
            if covered < e.end - e.start:
                s.leaks.append(f"{ln.text[e.start : e.end]!r} in {ln.text!r}")
        for g in got:
            if not any(g.start < e.end and g.end > e.start for e in ln.spans):
                s.false_masks.append(f"{ln.text[g.start : g.end]!r} as {g.kind} in {ln.text!r}")
        if mask(ln.text, got) != ln.expected:
            s.wrong.append((ln.text, ln.expected, mask(ln.text, got)))
    return s
