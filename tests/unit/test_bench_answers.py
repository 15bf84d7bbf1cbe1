"""bench answers: scoring a reply, reading a question corpus, and the built-in question set."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from voxloop.audio.wav import write_wav
from voxloop.bench.answers import is_right, load_questions
from voxloop.errors import VoxloopError


def test_a_reply_is_right_when_it_contains_an_alternative_in_any_case() -> None:
    assert is_right("It's Paris, of course.", ("paris",))
    assert is_right("Spiders have EIGHT legs.", ("eight", "8"))
    assert is_right("I can\u2019t set timers.", ("can't", "cannot"))  # a curly apostrophe
    assert not is_right("Spiders have four legs.", ("eight", "8"))
    assert not is_right("anything", ("", " "))  # an empty alternative matches nothing


def corpus(tmp_path: Path, rows: list[tuple[str, str, str]], answers: dict[str, str]) -> Path:
    for id_, _, _ in rows:
        write_wav(tmp_path / "clips" / f"{id_}.wav", np.zeros(1600, np.float32), 16000)
    with open(tmp_path / "manifest.tsv", "w") as f:
        f.write("id\tconversation\ttranscript\n" + "".join(f"{i}\t{c}\t{t}\n" for i, c, t in rows))
    with open(tmp_path / "answers.tsv", "w") as f:
        f.write("id\texpected\n" + "".join(f"{i}\t{e}\n" for i, e in answers.items()))
    return tmp_path


def test_questions_keep_their_conversations_and_alternatives(tmp_path: Path) -> None:
    folder = corpus(
        tmp_path,
        [("q1", "c", "What is the capital of Japan?"), ("q2", "c", "And Italy?"), ("q3", "", "Hi.")],
        {"q1": "tokyo", "q2": "rome|roma", "q3": "hello|hi"},
    )
    qs = load_questions(folder)
    assert [(q.clip.id, q.conversation, q.expected) for q in qs] == [
        ("q1", "c", ("tokyo",)),
        ("q2", "c", ("rome", "roma")),
        ("q3", "q3", ("hello", "hi")),  # no conversation: a fresh one of its own
    ]


def test_a_corpus_without_answers_says_what_to_do(tmp_path: Path) -> None:
    folder = corpus(tmp_path, [("q1", "", "Hi.")], {})
    (folder / "answers.tsv").unlink()
    with pytest.raises(VoxloopError, match="answers.tsv") as e:
        load_questions(folder)
    assert "--make-corpus" in str(e.value.hint)


def test_a_question_without_an_expected_answer_is_an_error(tmp_path: Path) -> None:
    folder = corpus(tmp_path, [("q1", "", "Hi."), ("q2", "", "Bye.")], {"q1": "hi"})
    with pytest.raises(VoxloopError, match="q2"):
        load_questions(folder)


def test_the_built_in_set_covers_every_kind_of_question() -> None:
    text = resources.files("voxloop.bench").joinpath("data/questions.tsv").read_text()
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    assert len(rows) >= 30
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["transcript"].strip() and r["expected"].strip() for r in rows)
    kinds = {r["id"][0] for r in rows}  # general, arithmetic, can't do, can do, follow-ups
    assert kinds == {"g", "a", "c", "d", "f"}
    follow_ups = [r for r in rows if r["conversation"] != r["id"]]
    assert len({r["conversation"] for r in follow_ups}) >= 3 and len(follow_ups) >= 6
