"""teacher.context_passages: the opening and the passages a question needs, and who decides k."""
from types import SimpleNamespace

from agents.context_passages import ContextIndex, passages
from agents.runtime import Services, context_for
from ioa_state import RunConfig

SHEET = """You are an expert on Zorbia. Here are the facts:
- The capital of Zorbia is Velmora.
- The longest river in Zorbia is the Tamsel.
- The currency of Zorbia is the drin.
- One drin is worth 10 pel.
- The leader of Zorbia is Queen Ilsa."""


def test_passages_split_list_items_and_paragraphs():
    doc = "Intro line\nstill intro\n\n- one\n  wraps on\n- two\n\nA closing paragraph.\nIts second line."
    assert passages(doc) == ["Intro line\nstill intro", "- one\n  wraps on", "- two",
                             "A closing paragraph.\nIts second line."]


def test_a_question_gets_the_opening_and_its_passages_in_document_order():
    ix = ContextIndex(SHEET, 2)
    got = ix.for_question("How many pel is one drin worth?").splitlines()
    assert got == ["You are an expert on Zorbia. Here are the facts:", "- The currency of Zorbia is the drin.",
                   "- One drin is worth 10 pel."]


def test_a_question_the_document_does_not_speak_to_gets_the_opening_alone():
    assert ContextIndex(SHEET, 2).for_question("What is the opposite of hot?") == (
        "You are an expert on Zorbia. Here are the facts:")


def test_k_zero_or_a_short_document_gives_the_whole_document():
    assert ContextIndex(SHEET, 0).for_question("capital?") == SHEET
    assert ContextIndex(SHEET, 5).whole  # 6 passages: the opening and 5, no more than k + 1
    assert not ContextIndex(SHEET, 4).whole
    assert context_for(SHEET, 0, "capital?") == SHEET
    assert context_for(None, 3, "capital?") is None


def _svc(pack_k: int | None, **teacher) -> Services:
    pack = SimpleNamespace(context=SHEET, **({} if pack_k is None else {"context_passages": pack_k}))
    cfg = RunConfig.model_validate({"teacher": teacher})
    return Services(cfg=cfg, pack=pack, items={}, teacher=None, student=None, run_dir=None, trace=None)


def test_the_pack_chooses_k_for_its_own_context_the_config_overrides_it(tmp_path):
    assert _svc(None).context_passages == 0
    assert _svc(2).context_passages == 2
    assert _svc(2, context_passages=0).context_passages == 0
    assert _svc(None, context_passages=3).context_passages == 3
    assert _svc(2, context="Be brief.").context_passages == 0  # the user's own context: whole, unless they ask
    doc = tmp_path / "doc.txt"
    doc.write_text(SHEET)
    assert _svc(2, context_file=str(doc)).context_passages == 0
    svc = _svc(2)
    got = svc.teacher_context_for("Who is the leader of Zorbia?").splitlines()
    assert len(got) == 3 and got[0].startswith("You are") and "- The leader of Zorbia is Queen Ilsa." in got


def test_the_teachers_exam_answers_get_the_passages_of_their_question(services):
    from conftest import make_items

    from agents import scoring

    items = make_items({"rivers": [("What is the river of Zorbia?", "Tamsel")]}, n_probe=2, n_test=0)
    svc = services(items, lambda req: "Tamsel", lambda p: "", **{"teacher.context": SHEET,
                                                                 "teacher.context_passages": 1})
    answers = scoring.teacher_answers(svc, items, "examiner")
    assert set(answers) == {it.id for it in items}
    systems = {r.messages[0]["content"] for r in svc.teacher.requests}
    assert systems == {"You are an expert on Zorbia. Here are the facts:\n- The longest river in Zorbia is the Tamsel."}
