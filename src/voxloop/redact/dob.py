"""Dates of birth: a date said in a birth context ("born on", "date of birth", "DOB", "birthday").
Other dates (a meeting, a deadline, a wedding) and a year of birth alone are left."""

from __future__ import annotations

import re

from voxloop.redact.dates import dates
from voxloop.redact.spans import Find

BEFORE = re.compile(
    r"(?:\b(?:born|birth|birthday|birthday's|birthdate|dob|b-day)\b|\bd\.o\.b\.?)"
    r"(?:\?\s+)?(?:(?!\b(?:and|but)\b)[^.!?;]){0,30}$",  # also the answer to "your date of birth?"
    re.I,
)
AFTER = re.compile(
    r"^\s*(?:is|was)\s+(?:my|his|her|their)\s+(?:birthday|date of birth|birth date|dob)\b", re.I
)


def find(text: str) -> list[Find]:
    found = []
    for start, end in dates(text):
        if BEFORE.search(text[max(0, start - 60) : start]) or AFTER.match(text[end:]):
            found.append(Find(start, end, "DOB"))
    return found
