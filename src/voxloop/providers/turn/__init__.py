"""End-of-turn models: the audio of a turn so far in, P(the speaker has finished) out."""

from __future__ import annotations

from abc import abstractmethod

from voxloop.providers.base import Provider, Samples


class TurnModel(Provider):
    """Scores whether a turn is complete from its audio alone (mono float32 at `sample_rate`,
    from the turn's start to now). Blocking inference runs in the provider's own worker thread."""

    sample_rate: int = 16000
    required: bool = True  # False: not installed, the silence rules decide alone (a warning says so)

    @abstractmethod
    async def complete(self, audio: Samples) -> float:
        """P(turn complete) for the audio so far, 0-1."""


TURN_MODELS = ("auto", "none", "smart-turn")
TURN_MODEL_HELP = (
    "smart-turn: an audio model (Smart Turn v3.2) asked after 200 ms of silence holds a turn that "
    "sounds unfinished to 1.1 s (ending complete ones early is off: it cut readers off); auto "
    "(default): smart-turn if it is installed; none: the silence rules alone"
)


def create_turn_model(name: str) -> TurnModel | None:
    """The end-of-turn model called `name` (not loaded yet), or None for "none". "auto" is
    Smart Turn where it is installed: its `required` is False, so a missing model is a warning."""
    from voxloop.errors import UnknownProvider

    if name == "none":
        return None
    if name in ("smart-turn", "auto"):
        from voxloop.providers.turn.smart_turn import SmartTurn

        return SmartTurn(required=name == "smart-turn")
    raise UnknownProvider(f"unknown end-of-turn model '{name}'", f"available: {', '.join(TURN_MODELS)}")
