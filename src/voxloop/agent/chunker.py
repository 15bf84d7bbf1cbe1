"""LLM text pieces -> clause- and sentence-sized TTS requests.

The first request may end at any complete sentence ("Tokyo.", "Eight legs."), at a clause (a
comma after `first_clause_words` words, or after a one-word answer or greeting: "Sure,", "Hi,"),
or after `first_words` words wherever they end, so the first audio comes early; later requests
end at sentence boundaries. When the text comes slower than it is spoken (a busy machine), the caller
says `hurry` and the request ends after the words complete so far, at a clause if there is one:
the voice goes on in shorter pieces instead of falling silent mid-sentence.
Abbreviations ("Dr.", "e.g.") and decimals ("3.5") are not boundaries. Markdown and emoji, which
a voice cannot say, are removed.
"""

from __future__ import annotations

import re

_ABBREV = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "prof", "no", "approx"}
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)")
_MARKUP = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*•]\s+|^\s*\d+\.(?=\s+\D))", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)|https?://\S+")
MAX_WORDS = 40
# a clause of one of these words may be the first request on its own ("Sure, ..."); words that
# lead into a thought ("Well,", "So,") wait for it
_OPENERS = {"sure", "yes", "yeah", "no", "okay", "ok", "hi", "hello", "hey", "right", "great", "absolutely"}
_OPENERS |= {"certainly", "alright", "thanks"}


def clean_for_speech(text: str) -> str:
    text = _LINK.sub(lambda m: m.group(1) or "", text)
    text = _MARKUP.sub("", text)
    text = _EMOJI.sub("", text)
    text = text.replace("*", "").replace("_", " ")
    return re.sub(r"\s+", " ", text).strip()


class SentenceChunker:
    def __init__(self, first_clause_words: int = 4, first_words: int = 0) -> None:
        self.first_clause_words = first_clause_words
        self.first_words = first_words  # > 0: the first request may end after this many words
        self._buf = ""
        self._emitted = 0

    @property
    def emitted(self) -> int:
        """Requests made so far."""
        return self._emitted

    def push(self, piece: str, hurry: bool = False) -> list[str]:
        """The requests `piece` completes. `hurry`: also end one after the words complete so far."""
        self._buf += piece
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            chunk, self._buf = self._buf[:cut], self._buf[cut:]
            self._emit(chunk, out)
        if hurry and not out:
            cut = self._hurried_cut()
            if cut is not None:
                chunk, self._buf = self._buf[:cut], self._buf[cut:]
                self._emit(chunk, out)
        return out

    def _hurried_cut(self) -> int | None:
        """After the last clause end, else after the last complete word (one the next has begun)."""
        spans = list(re.finditer(r"\S+", self._buf))
        if len(spans) < 2:
            return None
        complete = spans[-2].end()
        clauses = [m.end() for m in _CLAUSE_END.finditer(self._buf, 0, complete + 1)]
        return clauses[-1] if clauses else complete

    def flush(self) -> list[str]:
        out: list[str] = []
        self._emit(self._buf, out)
        self._buf = ""
        return out

    def _emit(self, chunk: str, out: list[str]) -> None:
        text = clean_for_speech(chunk)
        if any(c.isalnum() for c in text):
            out.append(text)
            self._emitted += 1

    def _find_cut(self) -> int | None:
        for m in _SENTENCE_END.finditer(self._buf):
            if m.group().startswith(".") and (
                self._is_abbreviation(m.start()) or self._is_list_marker(m.start())
            ):
                continue
            if any(c.isalnum() for c in self._buf[: m.end()]):
                return m.end()
        if self._emitted == 0:
            for m in _CLAUSE_END.finditer(self._buf):
                said = self._buf[: m.start()].split()
                if len(said) >= self.first_clause_words or (
                    len(said) == 1 and said[0].lower().strip("\"'(") in _OPENERS
                ):
                    return m.end()
            # A word is complete once the next one has begun (LLM pieces carry a leading space).
            spans = list(re.finditer(r"\S+", self._buf))
            if self.first_words and len(spans) > self.first_words:
                return spans[self.first_words - 1].end()
        spans = list(re.finditer(r"\S+", self._buf))
        if len(spans) > MAX_WORDS:
            return spans[MAX_WORDS - 1].end()
        return None

    def _is_list_marker(self, dot: int) -> bool:
        """ "1." at the start of a line numbers a list item; it does not end a sentence."""
        line_start = self._buf.rfind("\n", 0, dot) + 1
        return self._buf[line_start:dot].strip().isdigit()

    def _is_abbreviation(self, dot: int) -> bool:
        word = self._buf[:dot].split()[-1:] or [""]
        w = word[0].lower().strip("(\"'")
        return w in _ABBREV or (len(w) == 1 and w.isalpha())
