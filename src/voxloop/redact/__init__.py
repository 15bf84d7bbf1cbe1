"""Personal data found in text and masked: emails, phone numbers (written, or spoken as digit
words), payment cards (Luhn-checked), IBANs (mod-97 checked), US social security numbers, IP
addresses and dates of birth become [EMAIL], [PHONE], [CARD], [IBAN], [SSN], [IP], [DOB].

Ordinary numbers are left alone: times, prices, order and flight numbers, years, versions,
quantities. Each kind has its own module; `find` collects their finds and settles overlaps.
"""

from __future__ import annotations

from voxloop.redact import digits, dob, email, iban, ip
from voxloop.redact.spans import KINDS, Find, mask, settle

__all__ = ["KINDS", "Find", "find", "redact"]


def find(text: str) -> list[Find]:
    """The personal data in `text`, in order, none overlapping."""
    return settle([*email.find(text), *iban.find(text), *ip.find(text), *dob.find(text), *digits.find(text)])


def redact(text: str) -> str:
    """`text` with each piece of personal data replaced by its kind: "[EMAIL]", "[PHONE]", ..."""
    return mask(text, find(text))
