"""The built-in demo tools (`--tools demo`): the date and time, a knowledge base of text files
(`--kb DIR`; by default a small bookshop's, in `tools/kb/`), and a transfer to a person."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from voxloop.tools.toolbox import Transfer, tool

KB_DIR = Path(__file__).parent / "kb"
_STOP = set(
    "a an and are at do does for how i is it me my of on our the to we what when where which you your".split()
)


@tool(filler="Let me check the clock.", examples=[("Could you tell me the time?", {})])
def get_date_and_time() -> str:
    """Get the current date and time. Use it whenever the caller asks what time, day or date it is."""
    now = datetime.now().astimezone()
    hour = now.hour % 12 or 12
    return (  # worded to be said: the model tends to read its result out as it is
        f"It is {hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'} {now.tzname()} on {now:%A}, "
        f"{now.day} {now:%B %Y}."
    )


@tool(examples=[("Can you put me through to someone?", {"reason": "the caller asked for a person"})])
def transfer_to_human(reason: str = "") -> Transfer:
    """Transfer the caller to a human member of staff. Use it when the caller asks to speak to a
    person, an agent or someone real, or when you cannot help them.

    Args:
        reason: why the caller wants a person, in a few words
    """
    return Transfer(reason or "the caller asked for a person")


def knowledge_base(folder: Path) -> Callable[[str], str]:
    """The lookup tool over the .txt (and .md) files of `folder`: the first line of each is its title."""
    if not folder.is_dir():
        from voxloop.errors import VoxloopError

        raise VoxloopError(f"--kb {folder}: no such folder", "give a folder of .txt files")

    @tool(
        filler="Let me look that up.",
        examples=[
            ("When do you open tomorrow?", {"topic": "opening hours"}),
            ("Where are you?", {"topic": "address"}),
        ],
    )
    def search_knowledge_base(topic: str) -> str:
        """Look up facts about the business: opening hours, address and directions, returns policy,
        delivery. Use it for any question about the shop instead of guessing.

        Args:
            topic: what to look up, in a few words (for example "opening hours")
        """
        docs = _documents(folder)
        if not docs:
            return "The knowledge base is empty."
        words = _words(topic)
        scored = sorted(((_score(words, title, body), title, body) for title, body in docs), reverse=True)
        best, title, body = scored[0]
        if best <= 0:
            titles = ", ".join(t for _, t, _ in scored)
            return f"Nothing in the knowledge base matches {topic!r}. Its topics are: {titles}."
        return f"{title}: {body}"

    return search_knowledge_base


def _documents(folder: Path) -> list[tuple[str, str]]:
    docs = []
    for path in sorted([*folder.glob("*.txt"), *folder.glob("*.md")]):
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if lines:
            docs.append((lines[0].strip("# ").strip(), " ".join(x.strip() for x in lines[1:] if x.strip())))
    return docs


def _words(text: str) -> set[str]:
    """The words that count, cut to 4 letters (a crude stem: "park" finds "parking")."""
    return {w[:4] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def _score(words: set[str], title: str, body: str) -> int:
    return 3 * len(words & _words(title)) + len(words & _words(body))


def tools(kb_dir: Path | None = None) -> list[Any]:
    return [get_date_and_time, knowledge_base(kb_dir or KB_DIR), transfer_to_human]
