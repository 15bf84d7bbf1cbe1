"""IP addresses, v4 and v6, as `ipaddress` parses them. Left alone: a dotted quad named as a
version or a section, and the addresses that name no one (loopback 127.0.0.1 and ::1, 0.0.0.0 and ::),
which a server's own log lines are full of."""

from __future__ import annotations

import ipaddress
import re

from voxloop.redact.numbers import digits_of
from voxloop.redact.spans import Find, near

_WORDS = "zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|and"
_PART = rf"(?:\d{{1,3}}|(?:{_WORDS})(?:[\s-]+(?:{_WORDS})){{0,4}})"
# said: "ten dot zero dot zero dot one", "one ninety two dot one sixty eight dot 1 dot 10"
SPOKEN_V4 = re.compile(rf"\b{_PART}(?:\s+dot\s+{_PART}){{3}}\b", re.I)
V4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
V6 = re.compile(r"(?<![\w:.])[0-9a-f]*:[0-9a-f:.]*[0-9a-f:](?![\w:])", re.I)
# words that name a dotted quad as something else
VERSION = frozenset(
    "version versions v ver release firmware build update upgrade section step chapter clause item "
    "paragraph figure table rule part".split()
)


def find(text: str) -> list[Find]:
    found = []
    for m in V4.finditer(text):
        if _personal(m.group()) and not near(text, m.start(), 3, VERSION):
            found.append(Find(m.start(), m.end(), "IP"))
    for m in SPOKEN_V4.finditer(text):
        parts = [
            digits_of(p.replace(" and ", " ")) or "x" for p in re.split(r"\s+dot\s+", m.group(), flags=re.I)
        ]
        if _personal(".".join(parts)) and not near(text, m.start(), 3, VERSION):
            found.append(Find(m.start(), m.end(), "IP"))
    for m in V6.finditer(text):
        s = m.group().rstrip(".")
        if s.count(":") >= 2 and any(c.isalnum() for c in s) and _personal(s):
            found.append(Find(m.start(), m.start() + len(s), "IP"))
    return found


def _personal(s: str) -> bool:
    """An address (`ipaddress` parses it) that may name someone's machine: not this machine's
    loopback, nor "any"."""
    try:
        address = ipaddress.ip_address(s)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)
