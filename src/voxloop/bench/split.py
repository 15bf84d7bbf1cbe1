"""Tune on one part of the corpus, judge on another: the split by speaker.

Every benchmark reports its figures for the whole corpus and for each part. A change that helps
the tuning part and hurts the validation part is not an improvement: it fits the clips it was
tuned on.

The split is by speaker, so no voice is on both sides. The speaker of a clip is the first field
of a LibriSpeech id (`1688-142285-0000` -> `1688`), else the part of the id before its first
underscore (`pocketsphinx_cards_001` -> `pocketsphinx`: one source, one voice).

For `../shared/corpus` (65 clips) the parts are chosen so that each has read speech from the
harder test-other set, from test-clean, and short commands:

| part | speakers | clips |
|---|---|---|
| tuning | test-other 1688, 2033, 2609; test-clean 1089; pocketsphinx (cards, go forward) | 40 |
| validation | test-other 1998, 2414; test-clean 1221, 1995; jfk; rhasspy (lamp) | 25 |

A speaker not in either list (another corpus in the same layout) is placed by a stable hash of
its name: crc32 % 3 == 0 -> validation (about a third), else tuning.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol, TypeVar

Part = Literal["tuning", "validation"]
PARTS: tuple[Part, ...] = ("tuning", "validation")

TUNING = frozenset({"1688", "2033", "2609", "1089", "pocketsphinx"})
VALIDATION = frozenset({"1998", "2414", "1221", "1995", "jfk", "rhasspy"})


class HasId(Protocol):
    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=HasId)


def speaker(clip_id: str) -> str:
    head = clip_id.split("-", 1)[0]
    if head != clip_id and head.isdigit():
        return head
    return clip_id.split("_", 1)[0]


def part_of(clip_id: str) -> Part:
    who = speaker(clip_id)
    if who in TUNING:
        return "tuning"
    if who in VALIDATION:
        return "validation"
    return "validation" if zlib.crc32(who.encode()) % 3 == 0 else "tuning"


def by_part(clips: Iterable[C]) -> dict[Part, list[C]]:
    out: dict[Part, list[C]] = {p: [] for p in PARTS}
    for c in clips:
        out[part_of(c.id)].append(c)
    return out


def parts_of(ids: Sequence[str]) -> dict[str, list[int]]:
    """Row indices of `ids` for "all" and for each part (a part with no rows is left out)."""
    out: dict[str, list[int]] = {"all": list(range(len(ids)))}
    for p in PARTS:
        rows = [i for i, x in enumerate(ids) if part_of(x) == p]
        if rows:
            out[p] = rows
    return out
