"""Conversation history kept across turns, trimmed to what fits the prompt."""

from __future__ import annotations

from collections.abc import Callable

from voxloop.providers.base import Message


class History:
    def __init__(
        self, system_prompt: str, max_turns: int = 8, scrub: Callable[[str], str] | None = None
    ) -> None:
        """`scrub`: applied to the user's words as they enter (`voxloop.redact.redact` masks personal
        data before the LLM sees it); the history keeps them as scrubbed, what the LLM saw."""
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self.scrub = scrub
        self._messages: list[Message] = []

    def add_user(self, text: str, revises: str = "") -> None:
        """`revises`: the last turn's words, which `text` holds heard again (the user had only
        paused): they leave the last user message (and the message, if nothing else is left, with
        any words of a reply to it nobody waited for)."""
        if self.scrub is not None:
            text, revises = self.scrub(text), self.scrub(revises)
        users = [i for i, m in enumerate(self._messages) if m.role == "user"]
        if revises and users:
            last = self._messages[users[-1]].content
            if last == revises:
                del self._messages[users[-1] :]
            elif last.endswith(" " + revises):
                self._messages[users[-1]] = Message("user", last[: -len(revises) - 1])
                del self._messages[users[-1] + 1 :]
        if self._messages and self._messages[-1].role == "user":
            # Two user messages in a row (the reply to the first was never heard): join them.
            text = f"{self._messages.pop().content} {text}"
            if self.scrub is not None:  # a number split between the two is whole again
                text = self.scrub(text)
        self._messages.append(Message("user", text))

    def add_tools(self, messages: list[Message]) -> None:
        """A reply's tool calls (assistant messages) and their results (tool messages), in order."""
        self._messages += messages

    def add_assistant(self, text: str) -> None:
        if text.strip():
            self._messages.append(Message("assistant", text.strip()))

    def prompt(self) -> list[Message]:
        """System prompt + the last `max_turns` exchanges, always starting at a user message."""
        msgs = self._messages
        users = [i for i, m in enumerate(msgs) if m.role == "user"]
        if self.max_turns <= 0:
            msgs = msgs[users[-1] :] if users and users[-1] == len(msgs) - 1 else []
        elif len(users) > self.max_turns:
            msgs = msgs[users[-self.max_turns] :]
        return [Message("system", self.system_prompt), *msgs]

    def prompt_with(self, user_text: str, revises: str = "") -> list[Message]:
        """The prompt as it would be after `add_user(user_text, revises)`, without changing the history."""
        probe = History(self.system_prompt, self.max_turns, self.scrub)
        probe._messages = list(self._messages)
        probe.add_user(user_text, revises)
        return probe.prompt()

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)
