"""Which lines the TTS cache keeps.

- Fixed lines (the fillers "One moment." and "Give me a second.", and any `fixed_lines` such as a
  greeting) are always looked up and stored; they are synthesized into the cache when the voice
  loads, so even their first use is a hit.
- Reply lines (what the language model says, and text sent to the speech endpoints) follow
  `replies`: "off" (never), "repeated" (the default: looked up always, stored the second time the
  same line is said by this process, so one-off sentences do not push out the lines that repeat,
  such as an IVR's "Is there anything else I can help you with?"), or "all".
- A reply line that may hold personal data is neither looked up nor stored: the audio of a
  spoken phone number is personal data too. `personal(text)` decides; by default a line is
  personal when `voxloop.redact` masks anything in it, and also (more cautious than redaction,
  which leaves ordinary numbers alone in logs) when it has any digit, an "@", or four number
  words in a row ("four one five five"): a line with a number in it is rarely one that repeats.
  Names are not detected: where callers' names may be spoken back, run with replies "off".
  Lines longer than `max_chars` are not cached either.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType

from voxloop.providers.tts.cache.key import normalize

REPLIES = ("off", "repeated", "all")
SEEN_MAX = 4096  # hashes of reply lines said once, remembered for "repeated"
_NUMBER_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|double|triple)"
_SPOKEN_DIGITS = re.compile(rf"\b{_NUMBER_WORDS}(?:[\s,.-]+{_NUMBER_WORDS}){{3,}}\b", re.IGNORECASE)


@functools.cache
def _redactor() -> Callable[[str], str] | None:
    """`voxloop.redact(text) -> str` (the PII redaction module), when this install has it."""
    fn: object = getattr(importlib.import_module("voxloop"), "redact", None)
    if fn is None:
        try:
            fn = importlib.import_module("voxloop.redact")
        except ImportError:
            return None
    if isinstance(fn, ModuleType):
        fn = getattr(fn, "redact", None)
    return fn if callable(fn) else None


def looks_personal(text: str) -> bool:
    """The default test: may this line hold personal data (see the module docstring)?"""
    if any(c.isdigit() for c in text) or "@" in text or _SPOKEN_DIGITS.search(text):
        return True
    redact = _redactor()
    return redact is not None and redact(text) != text


@dataclass(frozen=True)
class Decision:
    lookup: bool  # ask the store for this line
    store: bool  # keep its audio once it has been synthesized whole
    fixed: bool = False


BYPASS = Decision(False, False)


@dataclass
class LinePolicy:
    fixed: Iterable[str] = ()
    replies: str = "repeated"
    max_chars: int = 200
    personal: Callable[[str], bool] = looks_personal
    _fixed: frozenset[str] = field(init=False)
    _seen: OrderedDict[str, None] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.replies not in REPLIES:
            raise ValueError(f"replies must be one of {', '.join(REPLIES)}, not {self.replies!r}")
        self._fixed = frozenset(normalize(t) for t in self.fixed if t.strip())

    @property
    def fixed_lines(self) -> list[str]:
        return sorted(self._fixed)

    def decide(self, text: str, key: str) -> Decision:
        line = normalize(text)
        if line in self._fixed:
            return Decision(True, True, fixed=True)
        if self.replies == "off" or not line or len(line) > self.max_chars or self.personal(line):
            return BYPASS
        if self.replies == "all":
            return Decision(True, True)
        if key in self._seen:  # said before: keep it this time
            self._seen.pop(key)
            return Decision(True, True)
        self._seen[key] = None
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        return Decision(True, False)
