"""Runs of digits, as written ("415-555-2671") and as a recogniser writes them when they are
spoken ("four one five", "oh" for zero, "double five", "twenty six"), mixed or not: the raw
material of phone, card and social security numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

UNITS = dict(zip("zero one two three four five six seven eight nine".split(), range(10), strict=True))
UNITS |= {"oh": 0, "o": 0}
TEENS = dict(
    zip(
        "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(),
        range(10, 20),
        strict=True,
    )
)
TENS = dict(
    zip("twenty thirty forty fifty sixty seventy eighty ninety".split(), range(20, 100, 10), strict=True)
)
REPEAT = {"double": 2, "triple": 3}

TOKEN = re.compile(r"\d+|[a-z]+|\+", re.I)
# what may stand between two pieces of one number: spaces, one dash, dot or comma, parentheses
GAP = re.compile(r"\s{0,2}\)?\s{0,2}[-.,]?\s{0,2}\(?\s{0,2}")


@dataclass
class Run:
    start: int
    end: int
    digits: str = ""
    values: list[int] = field(default_factory=list)  # each piece's value ("twenty six": 26)
    groups: list[int] = field(default_factory=list)  # the digit counts of written groups, in order
    spoken: bool = False
    plus: bool = False
    dashes: bool = False  # written groups joined by dashes (415-555-2671)
    parens: bool = False  # a group in parentheses: (415) 555-2671
    dots: bool = False  # written groups joined by dots: 415.555.2671

    def add(self, digits: str, value: int, end: int, written: bool) -> None:
        self.digits += digits
        self.values.append(value)
        self.end = end
        if written:
            self.groups.append(len(digits))
        else:
            self.spoken = True

    @property
    def counting(self) -> bool:
        """Counted out rather than a number: "one two three four five", "1234567890"."""
        seq = self.values if self.spoken else [int(c) for c in self.digits]
        steps = {(b - a) % 10 if max(a, b) < 10 else b - a for a, b in zip(seq, seq[1:], strict=False)}
        return len(seq) >= 4 and (steps == {1} or steps == {9} or steps == {-1})


def _piece(text: str, toks: list[re.Match[str]], i: int, open_run: bool) -> tuple[str, int, int, int] | None:
    """The digits the token at `i` stands for: (digits, value, tokens used, end), or None."""
    t = toks[i]
    word = t.group().lower()
    alone = (t.start() == 0 or not text[t.start() - 1].isalnum()) and (
        t.end() == len(text) or not text[t.end()].isalnum()
    )
    if not alone:
        return None
    if word.isdigit():
        return word, int(word[:18]), 1, t.end()
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    joined = nxt is not None and re.fullmatch(r"[ -]", text[t.end() : nxt.start()]) is not None
    nword = nxt.group().lower() if nxt is not None and joined else ""
    if word in UNITS and (word != "o" or open_run):
        if nword == "hundred":
            return f"{UNITS[word]}00", UNITS[word] * 100, 2, toks[i + 1].end()
        return str(UNITS[word]), UNITS[word], 1, t.end()
    if word in TEENS:
        return str(TEENS[word]), TEENS[word], 1, t.end()
    if word in TENS:
        if nword in UNITS and UNITS[nword] and nword not in ("o", "oh"):
            return str(TENS[word] + UNITS[nword]), TENS[word] + UNITS[nword], 2, toks[i + 1].end()
        return str(TENS[word]), TENS[word], 1, t.end()
    if word in REPEAT and nxt is not None and joined:
        unit = UNITS.get(nword) if nword not in ("o",) else 0
        if unit is None and nword.isdigit() and len(nword) == 1:
            unit = int(nword)
        if unit is not None:
            return str(unit) * REPEAT[word], unit, 2, toks[i + 1].end()
    return None


def digits_of(text: str) -> str | None:
    """The digits `text` says, if all of it is one number ("one sixty eight": 168), else None."""
    found = runs(text, min_digits=1)
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(text.rstrip()):
        return None
    return found[0].digits


def runs(text: str, min_digits: int = 3) -> list[Run]:
    """Every run of `min_digits` or more digits, each with where it starts and ends in `text`."""
    toks = list(TOKEN.finditer(text))
    out: list[Run] = []
    run: Run | None = None
    i = 0
    while i < len(toks):
        t = toks[i]
        if run is not None and not _joins(text, run, t.start()):
            out.append(run)
            run = None
        plus = t.group() == "+" or t.group().lower() == "plus"
        piece = None if plus else _piece(text, toks, i, run is not None)
        if plus:
            if run is not None:
                out.append(run)
            run = Run(t.start(), t.end(), plus=True)
            i += 1
            continue
        if piece is None:
            if run is not None:
                out.append(run)
            run = None
            i += 1
            continue
        digits, value, used, end = piece
        if run is None:
            lead = re.search(r"\(\s?$", text[max(0, t.start() - 2) : t.start()])
            run = Run(t.start() - (len(lead.group()) if lead else 0), t.start())
        else:
            before = text[max(0, t.start() - 3) : t.start()]
            run.dashes |= re.search(r"\d-\s?$", before) is not None
            run.dots |= re.search(r"\d\.$", before) is not None
            run.parens |= ")" in text[run.end : t.start()]
        run.add(digits, value, end, written=digits == t.group())
        i += used
    if run is not None:
        out.append(run)
    return [r for r in out if len(r.digits) >= min_digits]


def _joins(text: str, run: Run, at: int) -> bool:
    gap = text[run.end : at]
    if GAP.fullmatch(gap) is None:
        return False
    if gap.strip() == "," and text[run.end - 1].isdigit() and text[at].isdigit():
        # a list of numbers (8000, 16000), unless the digits are said in chunks as a recogniser
        # writes them: dashed (1-2-3, 4-5-67-89) or a card's fours (4242, 4242, 4242, 4242)
        fours = re.search(r"(?<!\d)\d{4}$", text[max(0, run.end - 5) : run.end]) and re.match(
            r"\d{4}(?!\d)", text[at : at + 5]
        )
        return run.dashes or re.match(r"\d+-\d", text[at : at + 12]) is not None or bool(fours)
    if gap in (",", ".") and text[run.end - 1].isdigit():
        # 1,000 and 12.5 are one number; only 415.555.2671 (groups of three or more) is a phone's
        left = re.search(r"\d+$", text[max(0, run.end - 3) : run.end])
        right = re.match(r"\d+", text[at : at + 3])
        return (
            gap == "."
            and left is not None
            and right is not None
            and min(len(left.group()), len(right.group())) >= 3
        )
    return True
