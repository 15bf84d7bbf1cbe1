"""International bank account numbers: the country's length and the mod-97 check must both hold."""

from __future__ import annotations

import re

from voxloop.redact.spans import Find

# IBAN length per country (ISO 13616 registry)
LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

START = re.compile(r"\b[a-z]{2}\d{2}", re.I)
# the next group: up to four characters after one space, or a run written without spaces
GROUP = re.compile(r"[ ]?[a-z0-9]{1,4}(?![a-z0-9])|[a-z0-9]+(?![a-z0-9])", re.I)


def valid(iban: str) -> bool:
    iban = iban.upper()
    if LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def find(text: str) -> list[Find]:
    found = []
    for m in START.finditer(text):
        want = LENGTHS.get(m.group()[:2].upper())
        if want is None:
            continue
        # the groups that follow, until the country's length is met
        chars, end = m.group(), m.end()
        while len(chars) < want:
            g = GROUP.match(text, end)
            if g is None or len(chars) + len(g.group().strip()) > want:
                break
            chars, end = chars + g.group().strip(), g.end()
        if len(chars) == want and valid(chars):
            found.append(Find(m.start(), end, "IBAN"))
    return found
