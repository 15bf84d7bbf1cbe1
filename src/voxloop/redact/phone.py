"""Phone numbers: a run of digits that `phonenumbers` takes for a valid number (US by default,
any country after a +), or one of phone length after a cue such as "call" or "my number"."""

from __future__ import annotations

import functools
import logging
import re
from types import ModuleType

from voxloop.redact.numbers import Run
from voxloop.redact.spans import near

CUES = frozenset(
    "call calling phone cell mobile number number's text reach dial ring fax tel telephone whatsapp "
    "contact line".split()
)


log = logging.getLogger("voxloop.redact")
NANP = re.compile(r"1?[2-9]\d\d[2-9]\d{6}")  # the North American shape: area code, exchange, line


@functools.cache
def _library() -> ModuleType | None:
    try:
        import phonenumbers
    except ImportError:
        log.warning(
            'phonenumbers is not installed (pip install "voxloop[ops]"): phone numbers are checked '
            "by their North American shape only, and numbers after a + by their length"
        )
        return None
    return phonenumbers


def valid(digits: str, plus: bool, region: str = "US") -> bool:
    """A number `phonenumbers` finds valid (its region's plan, or the country after a +)."""
    lib = _library()
    if lib is None:
        return 8 <= len(digits) <= 15 if plus else NANP.fullmatch(digits) is not None
    try:
        number = lib.parse(("+" if plus else "") + digits, region)
    except lib.NumberParseException:
        return False
    return bool(lib.is_valid_number(number))


def is_phone(run: Run, text: str) -> bool:
    n = len(run.digits)
    if not 7 <= n <= 15 or run.counting:
        return False
    if (run.plus or (n in (10, 11) and _grouped(run))) and valid(run.digits, run.plus):
        return True
    if _shaped(run):
        return True  # a phone's shape, though a digit may have been misheard
    return n <= 12 and near(text, run.start, 6, CUES)


def _grouped(run: Run) -> bool:
    """Digits grouped as a phone's (415 555 2671, 1 415 5552671, 4155552671), not as an id's
    (LibriSpeech's 2033-164914 passes for a valid Connecticut number)."""
    return run.spoken or run.groups in ([10], [11], [3, 3, 4], [1, 3, 3, 4], [3, 7], [1, 10], [1, 3, 7])


def _shaped(run: Run) -> bool:
    """Ten digits (eleven after a 1) written as 415-555-2671 / (415) 555-2671 / 415.555.2671 /
    415 555 2671, or said digit by digit: nobody reads out an amount that way."""
    n, d = len(run.digits), run.digits
    if not (n == 10 or (n == 11 and d[0] == "1")):
        return False
    if run.spoken:
        return sum(v < 10 for v in run.values) >= 7
    return run.groups in ([3, 3, 4], [1, 3, 3, 4])
