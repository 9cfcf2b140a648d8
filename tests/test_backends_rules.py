"""The family rules adapters check before calling a pipeline (pure numpy: no torch, no model)."""

from __future__ import annotations

import pytest

from generators.video_rules import FrameRule, plan_frames


@pytest.mark.parametrize(
    ("multiple", "frames", "nearest"),
    [
        pytest.param(4, 80, "77 or 81", id="wan-80"),
        pytest.param(4, 2, "1 or 5", id="wan-2"),
        pytest.param(8, 40, "33 or 41", id="cogvideox-40"),
        pytest.param(8, 48, "41 or 49", id="cogvideox-48"),
    ],
)
def test_a_count_the_family_cannot_make_is_refused_with_the_counts(
    multiple: int, frames: int, nearest: str
) -> None:
    with pytest.raises(ValueError) as refused:
        FrameRule(multiple).check(frames, "family")
    assert str(refused.value) == (
        f"family: num_frames={frames} is not of the form {multiple}*k+1 (nearest valid: {nearest}); "
        "the pipeline would silently change it"
    )


@pytest.mark.parametrize("multiple", [1, 4, 8])
def test_valid_counts_pass_and_plans_only_make_valid_counts(multiple: int) -> None:
    rule = FrameRule(multiple)
    assert rule.check(multiple * 3 + 1, "family") == multiple * 3 + 1
    for num_frames in range(1, 50):
        for native_fps in (7.0, 8.0, 16.0, 24.0):
            plan = plan_frames(num_frames, 8.0, native_fps, rule, conditioning=1 + multiple)
            assert rule.check(plan.total, "family") == plan.total
            assert plan.total >= plan.conditioning + plan.needed
