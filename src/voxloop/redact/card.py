"""Payment card numbers: 13 to 19 digits that pass the Luhn check, grouped as cards are."""

from __future__ import annotations

from voxloop.redact.numbers import Run


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


def is_card(run: Run) -> bool:
    d = run.digits
    return (
        13 <= len(d) <= 19
        and d[0] in "23456"  # the major networks' first digits
        and not run.plus
        and (run.spoken or _card_groups(run.groups))
        and luhn(d)
    )
