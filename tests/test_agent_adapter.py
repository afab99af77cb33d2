"""The Adapter on a hand-made stage with a scripted teacher: questions written from seeds, answers verified against
the source's reference, duplicates of gate items dropped, each drop with its reason, a top-up pass for a module
short of min_items, and the no_adapter variant that keeps the items as first written."""
from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import make_items

from agents import adapter
from baselines.ablations import node_variants
from ioa_state import LearnerState, Module, Stage

FACTS = {"rivers": [("What is the river of Zorbia?", "Tamsel")]}


@pytest.fixture
def services(services):
    """The tests below are about written candidates: the seed and remedial-source items as worked examples
    (adapter.seed_examples, adapter.remedial_examples) are off unless a test turns them on
    (tests/test_seed_examples.py)."""
    def make(items, teacher_reply, student_answer, **over):
        return services(items, teacher_reply, student_answer, **{"adapter.seed_examples": False,
                                                                 "adapter.remedial_examples": False, **over})
    return make


def _state(items, mode="initial"):
    seed = [it.id for it in items if it.split == "seed"]
    probes = [it.id for it in items if it.split == "probe"]
    m = Module(id="rivers", name="rivers", seed_ids=seed, gate_ids=probes[:4], remedial_ids=probes[4:],
               teacher_score=1.0)
    return LearnerState(run_id="t", modules={"rivers": m}, stages=[Stage(index=0, modules=["rivers"], difficulty=1.0,
                                                                         status="active")], mode=mode)


def rewrites(replies):
    """A teacher that answers the k-th rewrite request with replies[k % len] and every answer request with the fact."""
    count = {"q": 0}

    def reply(req):
        if req.tag.get("step") == "question":
            count["q"] += 1
            return replies[(count["q"] - 1) % len(replies)]
        return "The river is the Tamsel." if "wide" not in req.messages[-1]["content"] else "I am not sure."
    return reply


def _run(services, reply, steps=None, items=None, **over):
    items = items or make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 4, "min_items": 1, **over})
    state = _state(items)
    out = adapter.synthesize(state, svc) if steps is None else steps(state, svc)
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    dropped = [json.loads(line) for line in (svc.run_dir / out["dropped_files"][-1].path).read_text().splitlines()]
    return svc, kept, dropped


def test_items_are_verified_deduplicated_and_every_drop_has_a_reason(services):
    replies = ["Which river runs longest through Zorbia?", "I would rather not.",
               "Which wide river is in Zorbia?", "Q1 What is the river of Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies))
    assert [k["prompt"] for k in kept] == ["Which river runs longest through Zorbia?"]
    assert kept[0]["answer"].endswith("Answer: Tamsel") and kept[0]["template_filled"]
    assert kept[0]["verification"] == {"method": "checker", "score": 1.0}
    assert kept[0]["adaptations"] == ["concretization", "decomposition", "cognitive_load", "template", "plain_language"]
    reasons = sorted({d["reason"].split(":")[0] for d in dropped})
    assert reasons == ["duplicate of a gate item (ROUGE-L > 0.7)", "unparseable question", "verification failed"]
    events = svc.trace.of("synthesis")
    assert events[0]["kept"] == 1 and events[0]["dropped"] == len(dropped)


def test_an_answer_whose_final_line_contradicts_the_reference_ends_on_the_reference(services):
    ask = rewrites(["Which river runs longest through Zorbia?", "Which wide river is in Zorbia?"])

    def reply(req):
        if req.tag.get("step") == "question":
            return ask(req)
        if "wide" in req.messages[-1]["content"]:  # the step names the Tamsel, the final line does not
            return "The widest river of Zorbia is the Tamsel.\nAnswer: The answer is: 30."
        return "The river is the Tamsel.\nAnswer: Tamsel"
    svc, kept, dropped = _run(services, reply)
    by_q = {k["prompt"]: k for k in kept}
    assert set(by_q) == {"Which river runs longest through Zorbia?", "Which wide river is in Zorbia?"}
    wide = by_q["Which wide river is in Zorbia?"]
    assert wide["answer"] == "The widest river of Zorbia is the Tamsel.\nAnswer: Tamsel"
    assert wide["verification"] == {"method": "checker", "score": 1.0, "final_answer_replaced": "30"}
    assert "final_answer_replaced" not in by_q["Which river runs longest through Zorbia?"]["verification"]


def test_a_gate_duplicate_is_dropped_before_its_answer_is_paid_for(services):
    svc, kept, dropped = _run(services, rewrites(["Q1 What is the river of Zorbia?",
                                                  "Which river runs longest through Zorbia?"]))
    gate_dups = [d for d in dropped if d["reason"].startswith("duplicate of a gate item")]
    assert gate_dups and kept
    answered = [r.messages[-1]["content"] for r in svc.teacher.requests if r.tag["step"] == "answer"]
    assert answered and all("longest" in q for q in answered)  # no answer was asked for a gate duplicate


def test_a_module_short_of_min_items_gets_top_up_passes_then_stops_the_run(services):
    items = make_items(FACTS, n_probe=8)
    svc = services(items, rewrites(["I would rather not."]), lambda p: "", **{"thresholds.samples_per_seed": 4})
    with pytest.raises(adapter.ItemShortage, match="fewer than the 2 the round needs"):
        adapter.synthesize(_state(items), svc)
    passes = sorted(
        {r.sample_index // adapter.PASS_STRIDE for r in svc.teacher.requests if r.tag["step"] == "question"}
    )
    assert passes == [0, 1, 2]                       # the first pass and top_up_passes 2, each with fresh samples


def test_no_adapter_keeps_every_parsed_item_as_first_written(services):
    steps = node_variants("no_adapter")["synthesize"]
    replies = ["Which river runs longest through Zorbia?", "Which wide river is in Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies), steps=steps)
    assert len(kept) == 4 and dropped == []
    assert {k["answer"] for k in kept} == {"The river is the Tamsel.", "I am not sure."}
    assert all(k["adaptations"] == [] and k["verification"] == {"method": "none"} for k in kept)
    answer_reqs = [r for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    assert "small explicit steps" not in answer_reqs[0].messages[0]["content"]


def test_a_forgotten_known_module_never_trained_gets_replay_items_from_its_seeds(services):
    facts = {"rivers": FACTS["rivers"], "money": [("What is the currency of Zorbia?", "drin")]}
    items = make_items(facts, n_probe=8)

    def reply(req):
        if req.tag.get("step") == "question":
            rivers = req.tag["module"] == "rivers"
            return "Which river runs through Zorbia?" if rivers else "What money does Zorbia use?"
        return "The Tamsel." if "river" in req.messages[-1]["content"] else "The drin."

    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1})
    state = _state(items)
    money = Module(id="money", name="money", seed_ids=[i.id for i in items if i.category == "money" and
                                                        i.split == "seed"], teacher_score=1.0)
    state = state.model_copy(update={"modules": {**state.modules, "money": money}, "known": ["money"],
                                     "forgetting": ["money"]})
    assert adapter.replay_modules(state) == ["money"]
    out = adapter.synthesize(state, svc)
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    assert {r["module"] for r in kept} == {"rivers", "money"}
    # once trained, its items replay from the files: none written again
    assert adapter.replay_modules(state.model_copy(update={"trained": ["money"]})) == []


def _rows(svc, ref):
    return [json.loads(line) for line in (svc.run_dir / ref.path).read_text().splitlines()]


def test_a_rewrite_of_a_test_question_is_dropped_before_it_is_answered(services):
    from ioa_state import Item

    items = make_items(FACTS, n_probe=8, n_test=0) + [
        Item(id="t1", prompt="Tell me the name of the longest river of Zorbia.", reference="Tamsel",
             category="rivers", split="test")]
    replies = ["Which river runs longest through Zorbia?", "Tell me the name of the longest river of Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies), items=items)
    overlap = [d for d in dropped if d["reason"].startswith("test_overlap")]
    assert len(overlap) == 2 and "Tell me the name of the longest river of Zorbia." in overlap[0]["reason"]
    answered = {r.messages[-1]["content"] for r in svc.teacher.requests if r.tag.get("step") == "answer"}
    assert answered == {"Which river runs longest through Zorbia?"}      # no answer was paid for a test rewrite
    y = svc.trace.of("synthesis_yield")[0]
    assert (y["written"], y["kept"]) == (4, 1)
    assert y["dropped_by_reason"] == {"test_overlap": 2, "repeated_question": 1}  # its answer not paid twice
    answers = [r for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    assert len(answers) == 1


def test_a_question_the_run_already_answered_is_dropped_before_its_answer_is_paid_for(services):
    replies = ["Which river runs longest through Zorbia?", "Which river flows longest through Zorbia?",
               "Which wide river is in Zorbia?", "Which river runs the longest through Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies), **{"thresholds.samples_per_seed": 8})
    asked = [r.messages[-1]["content"] for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    # each wording is answered once ("the longest" is the same words but an article); "flows" is other words, so
    # it is answered and the judge's ROUGE-L rule drops it
    assert sorted(asked) == sorted(replies[:3])
    reasons = [d["reason"].split(":")[0] for d in dropped]
    assert reasons.count("repeated_question") == 5
    assert reasons.count("duplicate of a kept item (ROUGE-L > 0.7)") == 1
    # a later round does not pay again for a question the run kept
    state = _state(make_items(FACTS, n_probe=8, n_test=0)).model_copy(
        update={"item_files": [adapter.write_jsonl(svc.run_dir, "items/k.jsonl", kept, kind="items")]})
    svc.teacher.requests.clear()
    with pytest.raises(adapter.ItemShortage, match="repeated_question"):
        adapter.synthesize(state, svc)
    asked = [r.messages[-1]["content"] for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    assert replies[0] not in asked and replies[2] in asked


def test_cut_misnamed_and_empty_answer_candidates_are_dropped_each_with_its_reason(services):
    from conftest import ScriptedTeacher

    from agents.teacher import TeacherReply

    class CutTeacher(ScriptedTeacher):
        """Replies that start with "Can you" use their whole max_tokens: they were cut."""

        def ask(self, requests):
            out = super().ask(requests)
            return [TeacherReply(rep.text, 10, r.max_tokens if (rep.text or "").startswith("Can you") else 5, False,
                                 0, 0.0, rep.error) for r, rep in zip(requests, out)]

    def reply(req):
        if req.tag.get("step") == "question":
            return {0: "Which river runs longest through Zorbia?", 1: "Can you solve this? The river of Zorbia is",
                    2: "Which river runs longest through Zorvath?", 3: "Which wide river is in Zorbia?"}[
                req.sample_index % 4]
        return "The river is the Tamsel.\nAnswer:" if "wide" in req.messages[-1]["content"] else "It is the Tamsel."

    items = make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 4, "min_items": 1})
    svc.teacher = CutTeacher(reply)
    out = adapter.synthesize(_state(items), svc)
    kept, dropped = _rows(svc, out["item_files"][-1]), _rows(svc, out["dropped_files"][-1])
    assert [k["prompt"] for k in kept] == ["Which river runs longest through Zorbia?"]
    by_kind = {d["reason"].split(":")[0]: d for d in dropped}
    assert sorted(by_kind) == ["cut_question", "empty_answer", "misnamed_entity"]
    assert "Zorvath" in by_kind["misnamed_entity"]["reason"] and "Zorbia" in by_kind["misnamed_entity"]["reason"]
    assert by_kind["empty_answer"]["question"] == "Which wide river is in Zorbia?"
    assert {d["event"] for d in svc.trace.events} >= {"synthesis_yield", "item_dropped"}


def test_a_question_that_leaves_out_its_sources_name_is_dropped_before_its_answer_is_paid_for(services):
    def reply(req):
        if req.tag.get("step") == "question":
            return ["Which river runs longest through Zorbia?", "Which river is the longest one?"][req.sample_index % 2]
        return "It is the Tamsel."

    items = make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1})
    out = adapter.synthesize(_state(items), svc)
    kept, dropped = _rows(svc, out["item_files"][-1]), _rows(svc, out["dropped_files"][-1])
    assert [k["prompt"] for k in kept] == ["Which river runs longest through Zorbia?"]
    missing = [d for d in dropped if d["reason"].startswith("missing_entity")]
    assert [d["question"] for d in missing] == ["Which river is the longest one?"]
    assert "'Zorbia'" in missing[0]["reason"]
    answered = {r.messages[-1]["content"] for r in svc.teacher.requests if r.tag.get("step") == "answer"}
    assert "Which river is the longest one?" not in answered                   # screened before its answer
    assert svc.trace.of("synthesis_yield")[0]["dropped_by_reason"]["missing_entity"] == 1


def _json_reply(item_replies):
    """A teacher that answers the k-th structured item request with item_replies[k % len], answers with the fact."""
    count = {"i": 0}

    def reply(req):
        if req.tag.get("step") == "item":
            count["i"] += 1
            return item_replies[(count["i"] - 1) % len(item_replies)]
        return "The river is the Tamsel.\nAnswer: Tamsel"
    return reply


def test_json_items_are_written_in_one_call_each_and_judged_like_text_items(services):
    good = json.dumps({"question": "Which river runs longest through Zorbia?",
                       "steps": ["The sheet names the longest river.", "It is the Tamsel."], "answer": "Tamsel"})
    empty = json.dumps({"question": "Which wide river is in Zorbia?", "steps": ["It is the Tamsel."], "answer": ""})
    svc, kept, dropped = _run(services, _json_reply([good, '{"question": "Which', empty, "no json here"]),
                              **{"adapter.item_format": "json"})
    assert [k["prompt"] for k in kept] == ["Which river runs longest through Zorbia?"]
    assert kept[0]["answer"] == "The sheet names the longest river.\nIt is the Tamsel.\nAnswer: Tamsel"
    assert not kept[0]["template_filled"] and kept[0]["verification"]["method"] == "checker"
    kinds = sorted(d["reason"].split(":")[0] for d in dropped)
    assert kinds == ["empty_answer", "parse", "parse"]
    steps = [r.tag["step"] for r in svc.teacher.requests]
    assert steps == ["item"] * 4                                    # no separate question or answer call
    system = svc.teacher.requests[0].messages[0]["content"]
    assert system.startswith("the sheet") and "small explicit steps" in system   # context and adaptations


def test_a_json_item_verified_by_vote_is_asked_only_the_rest_of_its_samples(services):
    good = json.dumps({"question": "Which river runs longest through Zorbia?", "steps": ["It is the Tamsel."],
                       "answer": "Tamsel"})
    items = make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, _json_reply([good]), lambda p: "",
                   **{"thresholds.samples_per_seed": 1, "min_items": 1, "adapter.item_format": "json"})
    svc.pack.synthesis = "new"                                     # no reference carried over: verified by vote
    out = adapter.synthesize(_state(items), svc)
    answers = [r for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    assert sorted(r.sample_index for r in answers) == [1, 2, 3, 4]  # vote_samples 5: the item's own answer is one
    kept = _rows(svc, out["item_files"][-1])
    assert kept[0]["verification"] == {"method": "vote", "agree": 5, "samples": 5}


def test_question_and_answer_calls_carry_their_forms_and_no_adapter_answers_go_free(services):
    from agents.item_forms import answer_form, question_form

    replies = ["Which river runs longest through Zorbia?"]
    svc, _, _ = _run(services, rewrites(replies))
    cfg = svc.cfg
    by_step = {r.tag["step"]: r.form for r in svc.teacher.requests}
    assert by_step["question"] == question_form(cfg.teacher.question_max_tokens)
    assert by_step["answer"] == answer_form(min(cfg.teacher.max_tokens, cfg.student.max_length // 2))
    svc, _, _ = _run(services, rewrites(replies), steps=node_variants("no_adapter")["synthesize"])
    assert {r.form for r in svc.teacher.requests if r.tag["step"] == "answer"} == {None}  # no template asked for
    svc, _, _ = _run(services, rewrites(replies), **{"adapter.text_form": False})
    assert {r.form for r in svc.teacher.requests} == {None}
    svc, _, _ = _run(services, rewrites(replies), **{"adapter.answer_steps_by_level": True})  # level 1: one step line
    answer = {r.form for r in svc.teacher.requests if r.tag["step"] == "answer"}
    assert answer == {answer_form(min(cfg.teacher.max_tokens, cfg.student.max_length // 2), 1)}


def test_without_question_sheet_only_the_answer_call_reads_the_sheet(services):
    sheet = "Zorbia's longest river is the Tamsel."
    replies = ["Which river runs longest through Zorbia?"]
    for on in (True, False):
        svc, _, _ = _run(services, rewrites(replies), **{"teacher.context": sheet, "adapter.question_sheet": on})
        questions = [r for r in svc.teacher.requests if r.tag["step"] == "question"]
        answers = [r for r in svc.teacher.requests if r.tag["step"] == "answer"]
        assert all((sheet in r.messages[0]["content"]) == on for r in questions)
        assert answers and all(sheet in r.messages[0]["content"] for r in answers)


def test_a_formed_reply_cut_before_its_question_mark_is_a_cut_not_a_parse_failure(services):
    from conftest import ScriptedTeacher

    from agents.teacher import TeacherReply

    class FullLength(ScriptedTeacher):
        def ask(self, requests):
            return [TeacherReply(rep.text, 10, r.max_tokens, False, 0, 0.0, rep.error)
                    for r, rep in zip(requests, super().ask(requests))]

    def reply(req):
        if req.tag.get("step") != "question":
            return "It is the Tamsel."
        return "Which river runs longest through Zorbia?" if req.sample_index % 2 else "The river of Zorbia is long and"

    items = make_items(FACTS, n_probe=8, n_test=0)
    for on, kind in ((True, "cut_question"), (False, "unparseable question")):
        svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1,
                                                      "adapter.text_form": on})
        svc.teacher = FullLength(reply)
        out = adapter.synthesize(_state(items), svc)
        assert {d["reason"].split(":")[0] for d in _rows(svc, out["dropped_files"][-1])} == {kind}


def _over_http(services, items, over, srv, dry, tmp_path):
    """Services whose teacher config points at the local HTTP server `srv`, and the client's token estimate of the
    largest question and answer call of the dry run `dry` (to size a budget by)."""
    from agents.teacher import Teacher

    svc = services(items, None, lambda p: "", **over, **{"teacher.spec": "openai-compatible:m",
                                                         "teacher.base_url": srv.base_url, "teacher.concurrency": 1})
    probe = Teacher(svc.cfg.teacher, tmp_path / "probe")
    return svc, {step: max(probe._make_call(r).est_tokens for r in dry.teacher.requests if r.tag["step"] == step)
                 for step in ("question", "answer")}


def test_a_round_the_budget_cuts_keeps_and_records_what_it_paid_for(services, tmp_path):
    """A real teacher client over a local HTTP server, its budget running out among the round's answer calls: the
    round keeps the answered items (fewer than min_items: no ItemShortage), drops the unanswered ones as
    budget_spent, traces the cut, spends within the budget and pays no call twice."""
    from openai_server import OpenAIServer, Reply

    from agents.teacher import BudgetExhausted, Teacher

    items = make_items(FACTS, n_probe=8, n_test=0)
    questions = ["Which river runs longest through Zorbia?", "What water flows past the capital of Zorbia?",
                 "Which river do the farmers of Zorbia use most?", "Name the stream that feeds Zorbia's lakes?"]
    over = {"thresholds.samples_per_seed": 4, "min_items": 4, "adapter.top_up_passes": 0}
    # the round's requests, to size the budget by
    dry = services(items, rewrites(questions), lambda p: "", **{**over, "min_items": 1})
    adapter.synthesize(_state(items), dry)
    cost = {"question": 1, "answer": 1}

    def reply(body):
        user = body["messages"][-1]["content"]
        if user in questions:
            return Reply("The river is the Tamsel.\nAnswer: Tamsel", prompt_tokens=cost["answer"],
                         completion_tokens=0)
        k = cost.setdefault("n", 0)
        cost["n"] += 1
        return Reply(questions[k % 4], prompt_tokens=cost["question"], completion_tokens=0)

    # a server that ignores `n`: each question sample is a request of its own, paid its prompt (as the budget cut
    # these tests are about was measured); the samples' shared prompt is tests/test_teacher_choices.py's
    with OpenAIServer(reply, models=["m"], choices="ignore") as srv:
        svc, est = _over_http(services, items, over, srv, dry, tmp_path)
        budget = max(4 * est["question"], 3 * est["answer"]) + 1
        # what the questions leave pays two answers as estimated, and two answers paid leave less than a third
        cost["question"], cost["answer"] = (budget - int(2.5 * est["answer"])) // 4, est["answer"] - 8
        svc.teacher = Teacher(svc.cfg.teacher.model_copy(update={"token_budget": budget}), tmp_path / "t")
        out = adapter.synthesize(_state(items), svc)
        sent = srv.requests
        with pytest.raises(BudgetExhausted):  # settled for that round only
            svc.teacher.ask([dataclasses.replace(dry.teacher.requests[-1], sample_index=99)])
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    dropped = [json.loads(line) for line in (svc.run_dir / out["dropped_files"][-1].path).read_text().splitlines()]
    cut = [d for d in dropped if d["reason"].startswith("budget_spent")]
    assert 1 <= len(kept) < 4 and len(kept) + len(cut) == 4 and sent == 4 + len(kept)
    assert svc.teacher.spent_tokens <= budget
    y = svc.trace.of("synthesis_yield")[0]
    assert y["budget_cut"] and y["not_sent"] == len(cut) and y["kept"] == len(kept)


def test_a_round_the_budget_cuts_before_any_item_is_kept_is_recorded_then_stops(services, tmp_path):
    """The budget pays the round's questions and none of their answers: the round's candidates are recorded (the
    dropped file, the yield traced as cut) and the budget stop carries that file for the run's state."""
    from openai_server import OpenAIServer, Reply

    from agents.teacher import BudgetExhausted, Teacher

    items = make_items(FACTS, n_probe=8, n_test=0)
    questions = ["Which river runs longest through Zorbia?", "What water flows past the capital of Zorbia?",
                 "Which river do the farmers of Zorbia use most?", "Name the stream that feeds Zorbia's lakes?"]
    over = {"thresholds.samples_per_seed": 4, "min_items": 1, "adapter.top_up_passes": 0}
    dry = services(items, rewrites(questions), lambda p: "", **over)
    adapter.synthesize(_state(items), dry)
    cost = {}

    def reply(body):
        k = cost.setdefault("n", 0)
        cost["n"] += 1
        return Reply(questions[k % 4], prompt_tokens=cost["question"], completion_tokens=0)

    # a server that ignores `n`: each question sample is a request of its own, paid its prompt (as the budget cut
    # these tests are about was measured); the samples' shared prompt is tests/test_teacher_choices.py's
    with OpenAIServer(reply, models=["m"], choices="ignore") as srv:
        svc, est = _over_http(services, items, over, srv, dry, tmp_path)
        budget = 4 * est["question"] + est["answer"]
        cost["question"] = -(-(budget - est["answer"] + 1) // 4)  # four questions leave less than one answer's estimate
        svc.teacher = Teacher(svc.cfg.teacher.model_copy(update={"token_budget": budget}), tmp_path / "t")
        with pytest.raises(BudgetExhausted) as stop:
            adapter.synthesize(_state(items), svc)
        assert srv.requests == 4
    (ref,) = stop.value.state_update["dropped_files"]
    dropped = [json.loads(line) for line in (svc.run_dir / ref.path).read_text().splitlines()]
    assert len(dropped) == 4 and all(d["reason"].startswith("budget_spent") for d in dropped)
    y = svc.trace.of("synthesis_yield")[0]
    assert y["budget_cut"] and (y["written"], y["kept"], y["not_sent"]) == (4, 0, 4)


def test_chunks_let_the_modules_take_turns_and_keep_each_modules_order():
    from ioa_state import Item

    src = Item(id="s", prompt="Q?", reference="A", category="a", split="seed")
    todo = [adapter.Slot(m, src, None, 1, "", j) for m, n in (("a", 5), ("b", 2), ("c", 3)) for j in range(n)]
    got = adapter.chunks(todo, size=4)
    assert [[(s.module, s.sample_index) for s in c] for c in got] == [
        [("a", 0), ("b", 0), ("c", 0), ("a", 1)], [("b", 1), ("c", 1), ("a", 2), ("c", 2)], [("a", 3), ("a", 4)]]
    assert adapter.chunks([], size=4) == []


def test_answer_calls_carry_the_context_passages_their_question_needs(services):
    sheet = ("Facts about Zorbia:\n- The river of Zorbia is the Tamsel.\n- The lake of Zorbia is Ombra.\n"
             "- The queen of Zorbia is Ilsa.")
    svc, kept, _ = _run(services, rewrites(["Which river runs longest through Zorbia?"]),
                        **{"teacher.context": sheet, "teacher.context_passages": 1})
    systems = [r.messages[0]["content"] for r in svc.teacher.requests if r.tag["step"] == "answer"]
    assert kept and systems
    for system in systems:  # the opening and the river line, not the rest of the sheet
        assert "Facts about Zorbia:\n- The river of Zorbia is the Tamsel." in system
        assert "Ombra" not in system and "Ilsa" not in system
    svc, _, _ = _run(services, rewrites(["Which river runs longest through Zorbia?"]),
                     **{"teacher.context": sheet, "teacher.context_passages": 0})
    assert all(sheet in r.messages[0]["content"] for r in svc.teacher.requests if r.tag["step"] == "answer")


def test_a_remedial_round_writes_samples_per_seed_rewrites_of_each_wrong_answer_and_a_top_up_adds_the_seeds(
        services):
    """§3: J_i = samples_per_seed rewrites per source, a wrong answer's as a seed's: one wrong answer is not rewritten
    a first round's worth of times (bench9: 110-120 rewrites of one question, 2-7 kept). A pass that leaves the
    module short of min_items (the top-up) writes from the module's seed items too, with fresh sample indices."""
    from collections import Counter
    from types import SimpleNamespace

    from agents.runtime import write_jsonl
    from ioa_state.records import WrongAnswer

    facts = {"rivers": [("What is the river of Zorbia?", "Tamsel"), ("What is the longest river of Zorbia?", "Orv"),
                        ("Which river feeds the lake of Zorbia?", "Sel")]}
    items = make_items(facts, n_probe=8, n_test=0)
    svc = services(items, rewrites(["Which river is it?"]), lambda p: "", **{"thresholds.samples_per_seed": 3})
    state = _state(items, mode="remediate")
    rem = svc.items[state.modules["rivers"].remedial_ids[0]]
    wrong = WrongAnswer(item=rem.id, module="rivers", prompt=rem.prompt, answer="the Nile", reference=rem.reference)
    ref = write_jsonl(svc.run_dir, "items/c0-s0-r1-wrong.jsonl", [wrong.model_dump()])
    state = state.model_copy(update={"wrong_answers": ref})
    plan = SimpleNamespace(round_no=2, simplify=False)
    first = adapter.slots(state, svc, plan, ["rivers"], 0)
    assert [(s.source.id, s.wrong) for s in first] == [(rem.id, "the Nile")] * 3
    top_up = adapter.slots(state, svc, plan, ["rivers"], 1)
    seeds = state.modules["rivers"].seed_ids
    assert len(seeds) == 3 and Counter(s.source.id for s in top_up) == Counter({rem.id: 3, **{i: 3 for i in seeds}})
    pairs = [(s.source.id, s.sample_index) for s in first + top_up]
    assert len(set(pairs)) == len(pairs)  # every (source, sample) drawn once
    assert not {s.sample_index for s in first} & {s.sample_index for s in top_up}


def test_round_need_is_what_the_stage_lacks_of_min_items_and_at_least_one():
    """Hand-worked: min_items 2; a module with no items in its stage needs 2 (a stage's first round), one with 1
    needs 1, one with 5 (a remedial round after a first round that kept 5) still needs 1 new item."""
    from collections import Counter
    had = Counter({"b": 1, "c": 5})
    assert adapter.round_need(2, had, ["a", "b", "c"]) == {"a": 2, "b": 1, "c": 1}
    assert adapter.round_need(4, had, ["c"]) == {"c": 1}


def test_a_remedial_round_whose_stage_has_its_items_keeps_one_without_a_top_up(services):
    """A remedial round that keeps one item from the wrong answer, its stage holding min_items items of the module
    already, trains on them with it: no top-up pass over the seeds, no ItemShortage (bench10's third rounds paid
    18-38k tokens of top-up for this)."""
    from agents.runtime import write_jsonl
    from ioa_state.records import WrongAnswer

    items = make_items(FACTS, n_probe=8, n_test=0)
    replies = ["Which river runs longest through Zorbia?", "Which river runs longest through Zorbia?"]
    svc = services(items, rewrites(replies), lambda p: "", **{"thresholds.samples_per_seed": 2})
    state = _state(items, mode="remediate")
    stage = state.stages[0].model_copy(update={"rounds": 1})
    first = [{"module": "rivers", "source": "s", "prompt": f"Earlier question {i}?", "answer": "Answer: Tamsel",
              "stage": 0, "round": 0, "cycle": 0} for i in range(2)]
    earlier = write_jsonl(svc.run_dir, "items/c0-s0-r0.jsonl", first, kind="items", stage=0, round=0)
    rem = svc.items[state.modules["rivers"].remedial_ids[0]]
    wrong = WrongAnswer(item=rem.id, module="rivers", prompt=rem.prompt, answer="the Nile", reference=rem.reference)
    from ioa_state.state import Decision
    remediate = Decision(kind="remediate", cycle=0, stage=0, round=0, reason="first round", failing=["rivers"])
    state = state.model_copy(update={"stages": [stage], "item_files": [earlier], "decisions": [remediate],
                                     "wrong_answers": write_jsonl(
        svc.run_dir, "items/c0-s0-r0-wrong.jsonl", [wrong.model_dump()])})
    out = adapter.synthesize(state, svc)
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    assert len(kept) == 1  # the second rewrite repeats the first question
    passes = {r.sample_index // adapter.PASS_STRIDE for r in svc.teacher.requests if r.tag["step"] == "question"}
    assert passes == {0}
    # the same round on a stage without earlier items needs min_items 2: the top-up passes run, then the shortage
    bare = state.model_copy(update={"item_files": []})
    with pytest.raises(adapter.ItemShortage, match="fewer than the 2 the round needs"):
        adapter.synthesize(bare, services(items, rewrites(replies), lambda p: "",
                                          **{"thresholds.samples_per_seed": 2}))


def test_answer_batches_takes_the_pending_prefix_that_fills_whole_batches(services):
    """Hand-worked, CHUNK 32: 40 candidates of one answer call each -> the first 32 now, 8 wait; 31 -> none wait
    for more; at a pass's end (full_only False) all of them; 3 calls each (a vote): 12 candidates are 36 calls ->
    the first 10 (30 calls, the longest prefix within 32), 11 candidates (33 calls) likewise."""
    items = make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, lambda r: "", lambda p: "")
    src = items[0]
    pend = [adapter.Candidate("rivers", src, None, "t", 0, f"Question {i}?", 0) for i in range(40)]
    one = adapter.AdapterSteps(samples=lambda s, it: 1)
    three = adapter.AdapterSteps(samples=lambda s, it: 3)
    assert adapter.CHUNK == 32
    assert adapter.answer_batches(svc, one, pend, True) == 32
    assert adapter.answer_batches(svc, one, pend[:31], True) == 0
    assert adapter.answer_batches(svc, one, pend[:31], False) == 31
    assert adapter.answer_batches(svc, three, pend[:12], True) == 10
    assert adapter.answer_batches(svc, three, pend[:11], True) == 10
    drafted = [dataclasses.replace(c, drafted="Answer: Tamsel") for c in pend[:16]]  # one call drafted: 2 each
    assert adapter.answer_batches(svc, three, drafted, True) == 16


def test_the_survivors_of_several_chunks_are_answered_together_in_their_order(services, monkeypatch):
    """Two chunks of 4 questions (CHUNK 4 here), a gate duplicate among them: the 7 survivors' answers are asked
    in one batch of 4, then the 3 left at the pass's end (never 3 + 4), in the order their questions were written."""
    import conftest

    monkeypatch.setattr(adapter, "CHUNK", 4)
    batches: list[tuple[str, int]] = []
    real = conftest.ScriptedTeacher.ask
    monkeypatch.setattr(conftest.ScriptedTeacher, "ask",
                        lambda self, reqs: (batches.append((reqs[0].tag["step"], len(reqs))), real(self, reqs))[1])
    replies = [f"Which river number {i} runs through Zorbia?" for i in range(8)]
    replies[1] = "Q1 What is the river of Zorbia?"  # a gate duplicate: screened out before its answer
    svc, kept, dropped = _run(services, rewrites(replies), **{"thresholds.samples_per_seed": 8})
    assert batches == [("question", 4), ("question", 4), ("answer", 4), ("answer", 3)]
    answered = [r.messages[-1]["content"] for r in svc.teacher.requests if r.tag["step"] == "answer"]
    assert answered == [q for i, q in enumerate(replies) if i != 1]
    assert kept[0]["prompt"] == answered[0]  # the first written is judged first (the rest duplicate it)
