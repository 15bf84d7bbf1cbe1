from __future__ import annotations

from voxloop.agent.history import History
from voxloop.providers.base import Message


def pairs(msgs: list[Message]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in msgs]


def test_prompt_starts_with_the_system_prompt() -> None:
    h = History("be brief")
    assert pairs(h.prompt()) == [("system", "be brief")]
    h.add_user("hi")
    h.add_assistant("  hello  ")
    assert pairs(h.prompt()) == [("system", "be brief"), ("user", "hi"), ("assistant", "hello")]


def test_consecutive_user_messages_are_joined() -> None:
    h = History("s")
    h.add_user("what is")
    h.add_user("the time")
    h.add_assistant("no idea")
    h.add_user("ok")
    assert pairs(h.messages) == [("user", "what is the time"), ("assistant", "no idea"), ("user", "ok")]


def test_empty_assistant_text_is_not_kept() -> None:
    h = History("s")
    h.add_user("a")
    h.add_assistant("   ")
    h.add_user("b")
    assert pairs(h.messages) == [("user", "a b")]


def test_trimmed_to_max_turns_starting_at_a_user_message() -> None:
    h = History("s", max_turns=2)
    for i in range(4):
        h.add_user(f"u{i}")
        h.add_assistant(f"a{i}")
    assert pairs(h.prompt()) == [
        ("system", "s"),
        ("user", "u2"),
        ("assistant", "a2"),
        ("user", "u3"),
        ("assistant", "a3"),
    ]
    assert len(h.messages) == 8  # trimming is for the prompt only


def test_trim_never_starts_at_an_assistant_message() -> None:
    h = History("s", max_turns=1)
    h.add_assistant("greeting")  # the agent spoke first
    h.add_user("u0")
    h.add_assistant("a0")
    h.add_user("u1")
    assert pairs(h.prompt()) == [("system", "s"), ("user", "u1")]
    h2 = History("s", max_turns=5)
    h2.add_assistant("greeting")
    h2.add_user("u0")
    assert pairs(h2.prompt()) == [("system", "s"), ("assistant", "greeting"), ("user", "u0")]


def test_prompt_with_does_not_mutate() -> None:
    h = History("s", max_turns=2)
    h.add_user("u0")
    h.add_assistant("a0")
    h.add_user("pending")
    before = h.messages
    assert pairs(h.prompt_with("more")) == [
        ("system", "s"),
        ("user", "u0"),
        ("assistant", "a0"),
        ("user", "pending more"),
    ]
    assert h.messages == before
    h.add_assistant("a1")
    assert pairs(h.prompt_with("u2")) == [
        ("system", "s"),
        ("user", "pending"),
        ("assistant", "a1"),
        ("user", "u2"),
    ]
    assert pairs(h.messages)[-1] == ("assistant", "a1")


def test_messages_is_a_copy() -> None:
    h = History("s")
    h.add_user("x")
    h.messages.clear()
    assert len(h.messages) == 1


def test_max_turns_zero_keeps_no_past_exchanges() -> None:
    h = History("s", max_turns=0)
    for i in range(3):
        h.add_user(f"u{i}")
        h.add_assistant(f"a{i}")
    assert len(h.prompt_with("now")) <= 2  # the system prompt (and at most the current words)


def test_a_revised_turn_replaces_the_words_it_heard_again_and_nothing_before_them() -> None:
    h = History("s")
    h.add_user("what is the capital")
    h.add_assistant("Paris.")
    h.add_user("tell me a story")
    h.add_assistant("Once")  # cut off within a reaction time: the user had only paused
    probe = h.prompt_with("tell me a story about a dragon", revises="tell me a story")
    h.add_user("tell me a story about a dragon", revises="tell me a story")
    assert (
        pairs(h.messages)
        == pairs(probe[1:])
        == [
            ("user", "what is the capital"),
            ("assistant", "Paris."),
            ("user", "tell me a story about a dragon"),
        ]
    )
    # two turns already joined into one message: only the re-heard words leave it
    h.add_user("and then")
    h.add_user("then a dog", revises="and then")
    assert pairs(h.messages)[-1] == ("user", "tell me a story about a dragon then a dog")
    # words this history never had (their turn's reply never began): nothing is taken out
    h.add_user("something else", revises="never added")
    assert pairs(h.messages)[-1] == ("user", "tell me a story about a dragon then a dog something else")
