"""IP addresses, v4 and v6, as `ipaddress` parses them; a dotted quad named as a version is left."""

from __future__ import annotations

import ipaddress
import re

from voxloop.redact.spans import Find, near

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
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if not near(text, m.start(), 3, VERSION):
            found.append(Find(m.start(), m.end(), "IP"))
    for m in V6.finditer(text):
        s = m.group().rstrip(".")
        if s.count(":") < 2 or not any(c.isalnum() for c in s):
            continue
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            continue
        found.append(Find(m.start(), m.start() + len(s), "IP"))
    return found
