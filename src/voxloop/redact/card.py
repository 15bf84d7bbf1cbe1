"""Payment card numbers: 13 to 19 digits of a card network's first digits and length that pass the
Luhn check, grouped as cards are (LibriSpeech's 2609-156975-0002 is not a Diners card).

Named as a card ("my card number is"), Luhn decides only for a number of a card's shape (a
network's first digits and one of its lengths): "The card number 4111 1111 1111 1112 was
rejected" is not a card number. Any other 12 to 23 digits after the name are masked: that is a
card number the recogniser heard with a digit too many or too few (Whisper wrote 4111 1111 1111
1111 said in words as 4-11-11-11-11-11-11-11-11, 17 digits, and 4242 said four times as five
groups). A digit misheard for another in a 16-digit number fails Luhn and is left: the limit of
checking."""

from __future__ import annotations

from voxloop.redact.numbers import Run
from voxloop.redact.spans import near

CUES = frozenset("card visa mastercard amex discover".split())

# (first digits from, to, lengths) of the card networks: Visa, Mastercard (51-55, 2221-2720),
# Amex, Discover, JCB, Diners Club, UnionPay, Maestro, Mir
NETWORKS = [
    (4, 4, (13, 16, 19)),
    (51, 55, (16,)),
    (2221, 2720, (16,)),
    (34, 34, (15,)),
    (37, 37, (15,)),
    (6011, 6011, (16, 17, 18, 19)),
    (644, 649, (16, 17, 18, 19)),
    (65, 65, (16, 17, 18, 19)),
    (3528, 3589, (16, 17, 18, 19)),
    (300, 305, (14, 15, 16, 17, 18, 19)),
    (36, 36, (14, 15, 16, 17, 18, 19)),
    (38, 39, (16, 17, 18, 19)),
    (62, 62, (16, 17, 18, 19)),
    (5018, 5018, (13, 14, 15, 16, 17, 18, 19)),
    (5020, 5020, (13, 14, 15, 16, 17, 18, 19)),
    (5038, 5038, (13, 14, 15, 16, 17, 18, 19)),
    (6304, 6304, (13, 14, 15, 16, 17, 18, 19)),
    (6759, 6763, (13, 14, 15, 16, 17, 18, 19)),
    (2200, 2204, (16, 17, 18, 19)),
]


def network(digits: str) -> bool:
    """The number's first digits and length are those of a card network."""
    for lo, hi, lengths in NETWORKS:
        head = int(digits[: len(str(lo))])
        if lo <= head <= hi and len(digits) in lengths:
            return True
    return False


def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card_groups(groups: list[int]) -> bool:
    """Written as one block, in fours (the last may be shorter), or 4-6-5 / 4-6-4 (Amex, Diners)."""
    if len(groups) <= 1 or groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4


def _years(groups: list[int], digits: str) -> bool:
    """A list of years ("2010 2011 2012 2013"), not a card."""
    parts = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return set(groups) == {4} and all(p[:2] in ("19", "20") for p in parts)


def is_card(run: Run, text: str) -> bool:
    d = run.digits
    if run.plus:
        return False
    if near(text, run.start, 4, CUES) and 12 <= len(d) <= 23:
        # of a card's shape: Luhn decides; else a digit or a group misheard, still a card's number
        return luhn(d) or not network(d)
    if not 13 <= len(d) <= 19:
        return False
    return network(d) and (run.spoken or (_card_groups(run.groups) and not _years(run.groups, d))) and luhn(d)
