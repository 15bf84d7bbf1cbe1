"""Email addresses: written (`ann.lee@example.com`) and as a recogniser writes them when spoken
(`ann dot lee at example dot com`; after "my email is", also `Anne Dotley at example.com`)."""

from __future__ import annotations

import re

from voxloop.redact.spans import Find

WRITTEN = re.compile(r"(?<![\w.+-])[\w.%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?![\w-])", re.I)

_TLD = r"(?:com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|us|ca|au|info|biz|me|ai|app|dev|ie|ch)"
_PART = r"[a-z0-9]+"
_JOIN = r"\s+(?:dot|underscore|dash|hyphen|plus)\s+"
SPOKEN = re.compile(
    rf"\b{_PART}(?:{_JOIN}{_PART}){{0,4}}\s+at\s+{_PART}(?:\s+dot\s+{_PART}){{0,3}}\s+dot\s+{_TLD}\b", re.I
)
# (repetitions are bounded: "dot dot dot ..." must not cost time growing with the square of its length)
# after "my email is": a name in up to three words, "at", a domain (said or written)
_DOMAIN = rf"[a-z0-9-]+(?:(?:\s+dot\s+|\.)[a-z0-9-]+){{0,3}}(?:\s+dot\s+|\.){_TLD}\b"
NAMED = re.compile(
    rf"\b(?:e-?mail)(?:\s+address)?(?:\s+(?:is|me\s+at|me\s+on|to|at)|'s|:)?\s+"
    rf"(?P<addr>(?:(?!at\b)[\w.-]+\s+){{0,2}}(?!at\b)[\w.-]+\s+at\s+{_DOMAIN})",
    re.I,
)
# webmail: "peter at gmail.com" is an address with or without "my email is"
MAILBOX = re.compile(
    rf"\b{_PART}(?:{_JOIN}{_PART}){{0,4}}\s+at\s+(?:gmail|googlemail|yahoo|hotmail|outlook|live|icloud|"
    rf"me|aol|proton|protonmail|gmx|mail|yandex|zoho)(?:\s+dot\s+|\.){_TLD}(?:(?:\s+dot\s+|\.){_TLD})?\b",
    re.I,
)
# words that come before "at" without being an address's name ("email me at ...")
_NOT_NAMES = frozenset("me us him her them you i we is it be at".split())


def find(text: str) -> list[Find]:
    found = [Find(m.start(), m.end(), "EMAIL") for m in WRITTEN.finditer(text)]
    for named in NAMED.finditer(text):
        if named.group("addr").split()[0].lower() not in _NOT_NAMES:
            found.append(Find(named.start("addr"), named.end("addr"), "EMAIL"))
    for pattern in (SPOKEN, MAILBOX):
        pos = 0
        while m := pattern.search(text, pos):
            first = m.group().split()[0].lower()
            if first in _NOT_NAMES:
                pos = m.start() + len(first)  # try again from the next word
                continue
            found.append(Find(m.start(), m.end(), "EMAIL"))
            pos = m.end()
    return found
