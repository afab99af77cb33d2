"""The trainer node trains on the stage's items (algorithm §4): every round of the current stage so far, not only
the newest; earlier stages' items are the replay pool."""
from __future__ import annotations

from agents.trainer import replay_sample, stage_items


def _item(module, cycle, stage, rnd, n):
    return {"id": f"c{cycle}-s{stage}-r{rnd}-{module}-{n}", "module": module, "cycle": cycle, "stage": stage,
            "round": rnd, "prompt": f"q{n}", "answer": f"a{n}"}


def test_a_remedial_round_trains_on_the_whole_stage_and_replays_earlier_stages():
    c0s0 = [_item("culture", 0, 0, 0, 1), _item("culture", 0, 0, 0, 2)]
    c1s0r0 = [_item("economy", 1, 0, 0, 3), _item("economy", 1, 0, 0, 4)]
    c1s0r1 = [_item("economy", 1, 0, 1, 5)]
    here, earlier = stage_items([c0s0, c1s0r0, c1s0r1], cycle=1, stage=0)
    assert [r["id"] for r in here] == [r["id"] for r in c1s0r0 + c1s0r1]  # stage 0 of cycle 1: both its rounds
    assert earlier == c0s0  # stage 0 of cycle 0 is an earlier stage, not this one
    # replay is sized on the stage's items: 0.2 of the round means 1 earlier item for 3 of the stage
    assert len(replay_sample(here, earlier, [], 0.2, seed=0)) == 1
    first, none = stage_items([c0s0], cycle=0, stage=0)
    assert first == c0s0 and none == []
