"""US social security numbers: 123-45-6789 as written, or nine digits (spoken or not) after a cue."""

from __future__ import annotations

from voxloop.redact import phone
from voxloop.redact.numbers import Run
from voxloop.redact.spans import near

CUES = frozenset({"ssn", "social", "social security", "ss"})


def plausible(digits: str) -> bool:
    """Not a number the SSA never issues: area 000, 666 or 900-999, group 00, serial 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def is_ssn(run: Run, text: str) -> bool:
    if len(run.digits) != 9 or run.plus or not plausible(run.digits):
        return False
    if near(text, run.start, 8, CUES):
        return True
    # written 123-45-6789, unless named as a phone (a recogniser may drop a digit of one)
    return run.groups == [3, 2, 4] and run.dashes and not near(text, run.start, 4, phone.CUES)
