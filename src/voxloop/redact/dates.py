"""Calendar dates as people write and say them: 04/12/1979, 1990-07-04, July 4, 1990, the third of
March, march ninth two thousand one, twelve oh three nineteen eighty eight."""

from __future__ import annotations

import re

_MONTHS = "january february march april may june july august september october november december"
MONTH = r"(?:" + "|".join(_MONTHS.split()) + r"|(?:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?)"
_UNIT = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_ORD_UNIT = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
_TEEN = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
_ORD_TEEN = (
    r"(?:tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth)"
)
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_S = r"[\s-]"
# a day of the month: 4, 4th, fourth, twenty-first, thirtieth, three, twenty one
DAY = (
    rf"(?:(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\b|(?:twenty|thirty){_S}{_ORD_UNIT}|twentieth|thirtieth"
    rf"|{_ORD_TEEN}|{_ORD_UNIT}|twenty{_S}{_UNIT}|thirty{_S}one|{_TEEN}|twenty|thirty|{_UNIT})"
)
# a year: 1985, nineteen eighty five, nineteen oh four, two thousand (and) one, twenty twelve
YEAR = (
    rf"(?:(?:19|20)\d\d\b|'?\d\d\b(?![:.]\d|\s+(?:years|months|weeks|days))|(?:nineteen|twenty){_S}(?:{_TENS}(?:{_S}{_UNIT})?|{_TEEN}|oh{_S}{_UNIT}|hundred)"
    rf"|two{_S}thousand(?:{_S}and)?(?:{_S}(?:{_TENS}(?:{_S}{_UNIT})?|{_TEEN}|{_UNIT}))?)"
)
_MONTH_NUMBER = rf"(?:{_UNIT}|ten|eleven|twelve)"
_DAY_NUMBER = rf"(?:oh{_S}{_UNIT}|{_TEEN}|twenty(?:{_S}{_UNIT})?|thirty(?:{_S}one)?|{_UNIT})"

PATTERNS = [
    # month first: July 4, 1990 / march third nineteen eighty five / Sept. 30, 1955
    rf"\b{MONTH}\s+(?:the\s+)?{DAY}(?:,?\s+{YEAR})?",
    # day first: 14 February 1992 / the fourth of july nineteen ninety / the 21st of October / 4-Jul-1990
    rf"\b(?:the\s+)?{DAY}(?:\s+|-)(?:of\s+)?{MONTH}(?:,?\s+{YEAR}|-(?:\d{{4}}|\d\d)\b)?",
    # numbers: 04/12/1979, 12.03.1988, 02-28-1970, 1/2/80, 1990-07-04, 1990/07/04
    r"(?<![\d/.-])(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}[/.-]\d{1,2}[/.-]\d{1,2})(?![\d/-]|\.\d)",
    # spoken numbers: twelve oh three nineteen eighty eight
    rf"\b{_MONTH_NUMBER}\s+{_DAY_NUMBER}\s+{YEAR}",
]
DATE = re.compile("|".join(f"(?:{p})" for p in PATTERNS), re.I)


def _numeric_ok(s: str) -> bool:
    """A numeric date whose parts could be a day and a month (either order) and a year."""
    parts = [int(p) for p in re.split(r"[/.-]", s)]
    if parts[0] > 31:  # year first
        return 1 <= parts[1] <= 12 and 1 <= parts[2] <= 31
    a, b = parts[0], parts[1]
    return 1 <= a <= 31 and 1 <= b <= 31 and min(a, b) <= 12


def dates(text: str) -> list[tuple[int, int]]:
    out = []
    for m in DATE.finditer(text):
        s = m.group()
        if re.fullmatch(r"[\d/.-]+", s) and not _numeric_ok(s):
            continue
        out.append((m.start(), m.end()))
    return out
