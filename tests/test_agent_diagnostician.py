"""The diagnostician (Identifier) on a hand-made pack with a scripted teacher and student: modules from the data,
teacher and student scores, gaps against tau_gap, targets (Eq. 5), and the no_identifier variant."""
from __future__ import annotations

import json

from conftest import make_items

from agents import diagnostician, item_forms
from baselines.ablations import uniform_targets
from ioa_state import LearnerState

FACTS = {"rivers": [("river of Zorbia?", "Tamsel"), ("lake of Zorbia?", "Ombra")],
         "colours": [("colour of the sky?", "blue"), ("colour of grass?", "green")],
         "money": [("currency of Zorbia?", "drin"), ("port of Zorbia?", "Saltreach")]}
ANSWERS = {q: a for facts in FACTS.values() for q, a in facts}


def _answer_of(prompt: str) -> str | None:
    return next((a for q, a in ANSWERS.items() if prompt.endswith(q)), None)


def teacher(req) -> str:
    user = req.messages[-1]["content"]
    if user.startswith("These questions belong"):
        topic = "rivers" if "river" in user else "colours" if "colour" in user else "money"
        return json.dumps({"name": topic, "description": f"about {topic}", "level": 2 if topic == "money" else 1})
    if user.startswith("How hard"):
        return "1"
    if user.startswith("A course has these topics"):
        return json.dumps({"edges": [{"prerequisite": "rivers", "topic": "money", "strength": 0.9}]})
    has_sheet = req.messages[0]["role"] == "system"
    return f"It is {_answer_of(user)}." if has_sheet else "I do not know."


def student_knows_colours(prompt: str) -> str:
    return f"{_answer_of(prompt)}" if "colour" in prompt else "No idea."


def test_first_diagnosis_finds_the_gaps_and_leaves_the_known_module(services):
    svc = services(make_items(FACTS), teacher, student_knows_colours, **{"thresholds.target_fraction": 0.25})
    out = diagnostician.diagnose(LearnerState(run_id="t"), svc)
    mods = out["modules"]
    assert sorted(mods) == ["colours", "money", "rivers"]
    assert all(m.teacher_score == 1.0 and len(m.gate_ids) == 8 and len(m.remedial_ids) == 8 for m in mods.values())
    assert out["gap"] == {"colours": 0.0, "money": 1.0, "rivers": 1.0}
    assert out["deficient"] == ["money", "rivers"]
    # the prior edge rivers -> money (0.9 > tau_dep) raises rivers' severity: 0.7 * 1 + 0.3 * 0.9
    assert abs(out["severity"]["rivers"] - 0.97) < 1e-9 and abs(out["severity"]["money"] - 0.7) < 1e-9
    assert out["targets"] == ["rivers"]                         # ceil(0.25 * 2) = 1, the most severe
    assert [e.src + ">" + e.dst for e in out["edges"] if e.kept] == ["rivers>money"]
    assert out["test_teacher"]["overall"] == 1.0 and abs(out["test_before"]["overall"] - 1 / 3) < 1e-9
    events = svc.trace.of("module_diagnosis")
    assert {e["module"]: e["deficient"] for e in events} == {"colours": False, "money": True, "rivers": True}
    levels = [r for r in svc.teacher.requests if r.messages[-1]["content"].startswith("How hard")]
    assert levels and all(r.form == item_forms.LEVEL_FORM for r in levels)  # one digit, under an in-process grammar


def test_a_module_the_teacher_cannot_answer_is_teacher_limited_and_never_targeted(services):
    def no_money(req):
        user = req.messages[-1]["content"]
        return "I do not know." if ("currency" in user or "port" in user) and "course" not in user else teacher(req)

    svc = services(make_items(FACTS), no_money, student_knows_colours, **{"thresholds.target_fraction": 1.0})
    out = diagnostician.diagnose(LearnerState(run_id="t"), svc)
    assert out["modules"]["money"].teacher_limited and out["deficient"] == ["rivers"]
    assert out["targets"] == ["rivers"]


def test_no_identifier_targets_every_teachable_module_with_uniform_weight(services):
    svc = services(make_items(FACTS), teacher, student_knows_colours)
    out = diagnostician.diagnose(LearnerState(run_id="t"), svc, targeting=uniform_targets)
    assert out["targets"] == ["colours", "money", "rivers"] and set(out["severity"].values()) == {1.0}


def test_a_teacher_reply_that_does_not_parse_is_a_recorded_fallback(services):
    def bad_cards(req):
        return "no json here" if req.messages[-1]["content"].startswith("These questions") else teacher(req)

    svc = services(make_items(FACTS), bad_cards, student_knows_colours)
    out = diagnostician.diagnose(LearnerState(run_id="t"), svc)
    m = out["modules"]["rivers"]
    assert m.name == "rivers" and m.level == 1 and "did not parse" in m.fallbacks[0]


def test_a_labelled_module_keeps_the_data_label_whatever_name_the_teacher_gives(services):
    def odd_names(req):
        user = req.messages[-1]["content"]
        if user.startswith("These questions belong"):
            name = "Paris" if "river" in user else "Two-word-and-one-line-description" if "colour" in user else "money"
            return json.dumps({"name": name, "description": f"about {name}", "level": 2})
        return teacher(req)

    svc = services(make_items(FACTS), odd_names, student_knows_colours)
    mods = diagnostician.diagnose(LearnerState(run_id="t"), svc)["modules"]
    assert {k: m.name for k, m in mods.items()} == {"colours": "colours", "money": "money", "rivers": "rivers"}
    assert mods["rivers"].description == "about Paris" and mods["rivers"].level == 2  # the card's other fields stay
    assert not any(m.fallbacks for m in mods.values())


def _unlabelled(items):
    return [it.model_copy(update={"category": None}) for it in items]


def test_an_unlabelled_module_takes_the_teachers_name_unless_two_modules_share_it(services):
    def by_topic(req):
        user = req.messages[-1]["content"]
        if user.startswith("These questions belong"):
            name = "Colours" if "colour" in user else "Zorbia facts"
            return json.dumps({"name": name, "description": f"about {name}", "level": 1})
        return teacher(req)

    svc = services(_unlabelled(make_items(FACTS)), by_topic, student_knows_colours)
    mods = diagnostician.diagnose(LearnerState(run_id="t"), svc)["modules"]
    assert all(k.startswith("cluster-") and not m.labels for k, m in mods.items())
    colours = [m for m in mods.values() if all("colour" in svc.items[i].prompt for i in m.seed_ids)]
    zorbia = [m for m in mods.values() if m not in colours]
    assert len(zorbia) == 1 and zorbia[0].name == "Zorbia facts" and not zorbia[0].fallbacks
    assert len(colours) == 2  # the clusters split the colours: both named "Colours", so neither keeps it
    assert all(m.name == m.id and "more than one module" in m.fallbacks[0] for m in colours)
    assert all(m.description == "about Colours" for m in colours)
