"""Choosing the next token (providers/llm/sampling.py)."""

from __future__ import annotations

import numpy as np

from voxloop.providers.llm.sampling import SamplingParams, sample


def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_temperature_zero_takes_the_most_likely_token() -> None:
    row = np.array([0.1, 3.0, 2.9, -1.0], np.float32)
    assert sample(row, [], SamplingParams(temperature=0, repeat_penalty=1.0), rng()) == 1


def test_the_repetition_penalty_lowers_tokens_just_said() -> None:
    row = np.array([0.0, 3.0, 2.9, -1.0], np.float32)
    params = SamplingParams(temperature=0, repeat_penalty=1.1)
    assert sample(row, [1], params, rng()) == 2  # 3.0 / 1.1 < 2.9
    assert sample(row, [0], params, rng()) == 1  # a token not said keeps its score


def test_only_the_top_k_and_top_p_can_be_drawn() -> None:
    row = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    params = SamplingParams(temperature=1.0, top_k=3, top_p=0.75, min_p=0.0, repeat_penalty=1.0)
    drawn = {sample(row, [], params, np.random.default_rng(i)) for i in range(300)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75; token 3 is outside the top 3 anyway


def test_min_p_drops_tokens_far_below_the_best() -> None:
    row = np.log(np.array([0.9, 0.06, 0.04], np.float32))
    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.05, repeat_penalty=1.0)
    drawn = {sample(row, [], params, np.random.default_rng(i)) for i in range(300)}
    assert drawn == {0, 1}  # 0.04 < 0.05 * 0.9
