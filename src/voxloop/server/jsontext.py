"""JSON from clients: every way a text can fail to parse is a ValueError.

`json.loads` raises RecursionError, not a ValueError, on deeply nested input (`"[" * 1000`): a
caller that caught only ValueError let a 2 kB message end a session or answer 500."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`, raising ValueError (JSONDecodeError, UnicodeDecodeError, or nesting too deep)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
