"""SentenceChunker: LLM pieces -> TTS requests."""

from __future__ import annotations

import pytest

from voxloop.agent.chunker import MAX_WORDS, SentenceChunker, clean_for_speech


def feed(chunker: SentenceChunker, pieces: list[str]) -> list[list[str]]:
    """What each push returned, then what flush returned (as the last entry)."""
    return [chunker.push(p) for p in pieces] + [chunker.flush()]


def flat(steps: list[list[str]]) -> list[str]:
    return [c for step in steps for c in step]


def test_first_request_ends_at_a_clause_after_enough_words() -> None:
    steps = feed(
        SentenceChunker(first_clause_words=3, first_words=0),
        ["Well, I", " think", " so", ",", " but", " let", " me", " check", "."],
    )
    assert flat(steps) == ["Well, I think so,", "but let me check."]
    assert steps[4] == ["Well, I think so,"]  # emitted as soon as the comma is followed by a space
    # a clause of fewer words does not end the first request
    assert flat(feed(SentenceChunker(3, 0), ["Yes, ", "of course ", "I can."])) == [
        "Yes,",
        "of course I can.",
    ]


def test_later_requests_end_only_at_sentences() -> None:
    c = SentenceChunker(first_clause_words=2, first_words=0)
    assert c.push("Sure thing, here ") == ["Sure thing,"]
    assert c.push("it is. ") == ["here it is."]
    assert c.push("First, the sky, the sea, ") == []  # no clause cuts after the first request
    assert c.push("and more! Then ") == ["First, the sky, the sea, and more!"]
    assert c.flush() == ["Then"]


def test_first_request_after_first_words_with_trailing_space_pieces() -> None:
    steps = feed(
        SentenceChunker(first_clause_words=3, first_words=4),
        ["Well ", "I ", "think ", "that ", "the ", "answer ", "is"],
    )
    assert flat(steps) == ["Well I think that", "the answer is"]
    assert steps[:4] == [[], [], [], []]


def test_first_request_after_first_words_with_leading_space_pieces() -> None:
    steps = feed(
        SentenceChunker(first_clause_words=3, first_words=4),
        ["Well", " I", " think", " that", " the", " answer", " is"],
    )
    assert flat(steps) == ["Well I think that", "the answer is"]
    assert steps[4] == ["Well I think that"]  # word 4 is complete once word 5 begins


def test_sentence_boundaries() -> None:
    c = SentenceChunker(first_clause_words=99, first_words=0)
    assert c.push("Hello there! How are you? I am fine") == ["Hello there!", "How are you?"]
    assert c.push(" really.") == []  # a boundary needs the next word to begin
    assert c.push(" Ok… so") == ["I am fine really.", "Ok…"]
    assert c.flush() == ["so"]
    # closing quotes and brackets stay with their sentence
    assert SentenceChunker(99, 0).push('He said "go now." Then (we left.) So ') == [
        'He said "go now."',
        "Then (we left.)",
    ]


def test_a_short_complete_first_sentence_or_opener_is_a_request_of_its_own() -> None:
    assert flat(feed(SentenceChunker(99, 0), ["Sure. ", "Here you go. ", "Bye"])) == [
        "Sure.",
        "Here you go.",
        "Bye",
    ]
    assert flat(feed(SentenceChunker(4, 0), ["Tokyo", ". ", "It is big."])) == ["Tokyo.", "It is big."]
    assert flat(feed(SentenceChunker(4, 0), ["Sure", ", ", "I can help."])) == ["Sure,", "I can help."]
    # a one-word clause that is not an opener waits for more words
    assert flat(feed(SentenceChunker(4, 0), ["Paris", ", ", "the capital."])) == ["Paris, the capital."]
    assert flat(feed(SentenceChunker(4, 0), ["...", " Hmm. ", "Yes."])) == ["... Hmm.", "Yes."]


@pytest.mark.parametrize(
    "text",
    [
        "Ask Dr. Smith about it. ",
        "Mr. and Mrs. Jones came. ",
        "Use tools, e.g. a hammer. ",
        "It costs 3.5 dollars today. ",
        "Pi is about 3.14159 in value. ",
        "Plan A. B is worse. ",
    ],
)
def test_abbreviations_decimals_and_initials_are_not_boundaries(text: str) -> None:
    c = SentenceChunker(first_clause_words=99, first_words=0)
    out = c.push(text) + c.flush()
    if text.startswith("Plan A."):
        assert out == ["Plan A. B is worse."]  # a single letter reads as an initial
    else:
        assert out == [text.strip()]


def test_decimal_split_across_pieces() -> None:
    assert flat(feed(SentenceChunker(99, 0), ["It is 3", ".", "5 metres", " long", ". ", "Yes"])) == [
        "It is 3.5 metres long.",
        "Yes",
    ]


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**Paris** is the _capital_.", "Paris is the capital ."),
        ("Use `pip install` now", "Use pip install now"),
        ("# Title\nSome text", "Title Some text"),
        ("- first item\n- second item", "first item second item"),
        ("1. one thing\n2. another", "one thing another"),
        ("Great job 🎉👍 really ☀️", "Great job really"),
        ("See [the docs](https://example.com/x) or https://example.com now", "See the docs or now"),
    ],
)
def test_clean_for_speech(raw: str, spoken: str) -> None:
    assert clean_for_speech(raw) == spoken


def test_markdown_and_emoji_removed_from_requests() -> None:
    out = flat(
        feed(SentenceChunker(99, 0), ["**Sure**", " thing", " 😀", ". ", "Use `ls`", " to", " list. "])
    )
    assert out == ["Sure thing .", "Use ls to list."]


def test_numbered_list_markers_are_not_spoken() -> None:
    pieces = [
        "Here",
        " are",
        " two",
        " options",
        ":\n",
        "1",
        ".",
        " Tea",
        " is",
        " nice",
        ".\n",
        "2",
        ".",
        " Coffee",
        " is",
        " strong",
        ".",
    ]
    out = flat(feed(SentenceChunker(3, 0), pieces))
    assert out and not any(w.rstrip(".").isdigit() for c in out for w in c.split()), out


def test_flush_emits_the_rest_and_nothing_empty() -> None:
    c = SentenceChunker(3, 4)
    assert c.push("no end punctuation") == []
    assert c.flush() == ["no end punctuation"]
    assert c.flush() == []  # nothing left
    for junk in (["", " ", "\n"], ["**", "__", " 🎉 "], [" ... ", "!!"], ["- ", "`", "#"]):
        c = SentenceChunker(3, 4)
        out = flat(feed(c, junk))
        assert out == [], (junk, out)


def test_every_request_has_words() -> None:
    c = SentenceChunker(1, 1)
    out = flat(feed(c, ["Hi", "! ", "🙂. ", "— ", "Then", " more", ". ", "** ", "end"]))
    assert out and all(any(ch.isalnum() for ch in chunk) for chunk in out)
    words = [w.strip("!.—") for w in " ".join(out).split()]
    assert [w for w in words if w] == ["Hi", "Then", "more", "end"]


def test_run_on_text_is_cut_after_max_words() -> None:
    c = SentenceChunker(99, 0)
    c.push("start ")
    out = [chunk for i in range(MAX_WORDS + 5) for chunk in c.push(f"w{i} ")]
    assert len(out) >= 1
    assert len(out[0].split()) == MAX_WORDS
    assert " ".join(out + c.flush()).split() == ["start", *(f"w{i}" for i in range(MAX_WORDS + 5))]


def test_hurry_ends_a_request_after_the_words_complete_so_far() -> None:
    c = SentenceChunker(first_clause_words=3, first_words=3)
    assert c.push("The") == []
    assert c.push(" capital", hurry=True) == ["The"]  # "The" is complete: " capital" has begun
    assert c.push(" of", hurry=False) == []  # no hurry: wait for the sentence
    assert c.push(" France,", hurry=True) == ["capital of"]
    assert c.push(" sure", hurry=True) == ["France,"]  # at the clause end
    assert c.push(" is Paris. It", hurry=False) == ["sure is Paris."]
    assert c.flush() == ["It"]


def test_hurry_with_one_word_begun_waits_for_it_to_complete() -> None:
    c = SentenceChunker(first_clause_words=3, first_words=3)
    assert c.push("Hel", hurry=True) == []
    assert c.push("lo", hurry=True) == []  # still one word: it may go on
    assert c.push(" there", hurry=True) == ["Hello"]
