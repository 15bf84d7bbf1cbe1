"""A found piece of personal data, and how overlapping finds are settled."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# When two finds overlap, the kind listed first wins (an email's digits are not a phone, an IBAN's
# are not a card, a date of birth's are not a phone number).
KINDS = ("EMAIL", "IBAN", "IP", "DOB", "SSN", "CARD", "PHONE")

_WORD = re.compile(r"[a-z0-9']+(?:\.[a-z]\.?)*")


@dataclass(frozen=True)
class Find:
    start: int
    end: int
    kind: str  # one of KINDS

    def __len__(self) -> int:
        return self.end - self.start


def settle(finds: list[Find]) -> list[Find]:
    """The finds to mask, in text order, none overlapping: the higher kind first, then the longer."""
    starts: list[int] = []  # the kept finds, in text order (they never overlap)
    kept: list[Find] = []
    for f in sorted(finds, key=lambda f: (KINDS.index(f.kind), -len(f), f.start)):
        i = bisect.bisect_left(starts, f.start)
        if (i == 0 or kept[i - 1].end <= f.start) and (i == len(kept) or f.end <= kept[i].start):
            starts.insert(i, f.start)
            kept.insert(i, f)
    return kept


def mask(text: str, finds: list[Find]) -> str:
    out, at = [], 0
    for f in finds:
        out += [text[at : f.start], f"[{f.kind}]"]
        at = f.end
    return "".join([*out, text[at:]])


def words_before(text: str, start: int, n: int) -> list[str]:
    """The last `n` words before `start`, lower-cased, within the same sentence (numbers and codes
    such as "1Z", "AA1" are passed over: "tracking number is 1Z 999 AA1 01 2345" names the last)."""
    head = re.split(r"[.!?;]\s+(?=[A-Z])|\n", text[max(0, start - 200) : start])[-1].lower()
    return [w for w in _WORD.findall(head) if not any(c.isdigit() for c in w)][-n:]


def near(text: str, start: int, n: int, cues: frozenset[str]) -> bool:
    """One of `cues` (single words, or two-word phrases "a b") among the `n` words before `start`."""
    ws = words_before(text, start, n)
    pairs = {f"{a} {b}" for a, b in zip(ws, ws[1:], strict=False)}
    return any(w in cues for w in ws) or any(p in cues for p in pairs)
