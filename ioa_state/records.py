"""Typed records of what a run writes: items, dropped candidates, wrong answers, trace events.

These pydantic models are the contract between the step that writes a file of the run directory and every reader of
it (the agents, the viewers, the bench). Item files (`items/*.jsonl`) hold `SynthesizedItem`, `DroppedItem` and
`WrongAnswer` lines; `trace.jsonl` holds one `TraceEvent` per line, of the kind its `event` field names (the
`EVENT_KINDS` registry; each kind's docstring is what `ioa trace --kinds` prints). No I/O here.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ioa_state.state import DecisionKind, Mode


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SynthesizedItem(_Record):
    """A training item the Adapter (or a baseline) kept: a question, the answer the student learns, and its origin."""

    id: str
    module: str | None = Field(None, description="the module it teaches (None for a baseline item without one)")
    prompt: str = Field(description="the question, as the student sees it")
    answer: str = Field(description="the answer the student is trained on")
    reference: str | None = Field(None, description="the final answer it was verified against")
    level: int = Field(1, ge=1, le=3, description="difficulty level the item was written at")
    mode: Mode = "initial"
    source: str = Field(description="id of the seed or remedial-source item it was written from")
    from_wrong_answer: bool = False
    question_template: str | None = None
    adaptations: list[str] = Field(default_factory=list, description="adaptations that shaped the answer")
    template_filled: bool = Field(False, description="the 'Answer: ...' line was added, not written by the teacher")
    verification: dict[str, Any] = Field(default_factory=dict, description="how it was verified, with the numbers")
    stage: int | None = None
    round: int | None = None
    cycle: int | None = None


class DroppedItem(_Record):
    """A candidate item that was not kept, with the reason (the first word before ':' is the reason's kind)."""

    module: str | None = None
    source: str
    from_wrong_answer: bool = False
    level: int = 1
    mode: Mode = "initial"
    pass_: int = Field(0, alias="pass", description="synthesis pass (0 first, then top-up passes)")
    round: int | None = None
    question: str | None = None
    answer: str | None = None
    reason: str

    @property
    def reason_kind(self) -> str:
        return self.reason.split(":")[0]


class WrongAnswer(_Record):
    """A student's wrong answer on a remedial-source item (what remedial synthesis writes from)."""

    item: str
    module: str
    prompt: str
    answer: str
    reference: str | None = None


# -- trace events --------------------------------------------------------------------------------------------------
class TraceEvent(BaseModel):
    """One line of trace.jsonl. Unknown kinds and extra fields are kept as they were written."""

    model_config = ConfigDict(extra="allow")

    seq: int = 0
    ts: float = 0.0
    event: str
    node: str | None = None
    cycle: int | None = None
    stage: int | None = None
    round: int | None = None


class NodeStart(TraceEvent):
    """A graph node began (node, cycle, stage, round)."""

    event: Literal["node_start"] = "node_start"


class NodeEnd(TraceEvent):
    """A graph node ended: its wall seconds and the state fields it updated."""

    event: Literal["node_end"] = "node_end"
    seconds: float = 0.0
    updated: list[str] = Field(default_factory=list)


class TeacherCall(TraceEvent):
    """One teacher call: role, backend, messages, reply, tokens, latency, cache hit, retries, error."""

    event: Literal["teacher_call"] = "teacher_call"
    role: str | None = None
    backend: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False
    error: str | None = None
    shared_prompt: bool = False  # one of several samples of a prompt that another sample of its batch paid for


class TeacherChoices(TraceEvent):
    """Whether a remote teacher takes the samples of one prompt as one request with `n` choices: accepted (the
    first such request succeeded) or refused (the reason; every later sample goes as a request of its own)."""

    event: Literal["teacher_choices"] = "teacher_choices"
    spec: str | None = None
    accepted: bool = False
    reason: str | None = None


class StructuredOutcome(TraceEvent):
    """How one batch of structured teacher replies parsed: on the first try, after a re-ask, or not at all."""

    event: Literal["structured_outcome"] = "structured_outcome"
    schema_name: str | None = Field(None, alias="schema")
    templates: list[str] = Field(default_factory=list)
    requests: int = 0
    parsed_first_try: int = 0
    parsed_after_reask: int = 0
    not_parsed: int = 0


class TeacherConcurrency(TraceEvent):
    """The teacher client changed how many requests it keeps in flight (AIMD: halved on overload, grown on success)."""

    event: Literal["teacher_concurrency"] = "teacher_concurrency"
    old: int = 0
    new: int = 0
    reason: str | None = None


class ModuleDiagnosis(TraceEvent):
    """Why a module is deficient or not: teacher and student scores, gap vs tau_gap, teacher floor, severity."""

    event: Literal["module_diagnosis"] = "module_diagnosis"
    module: str
    teacher_score: float
    student_score: float
    gap: float
    deficient: bool
    teacher_limited: bool
    severity: float
    target: bool
    given_up_twice: bool = False


class EdgeEvent(TraceEvent):
    """A prerequisite edge: prior, measured (Eq. 3), observations, strength vs tau_dep, kept or not."""

    event: Literal["edge"] = "edge"
    src: str
    dst: str
    strength: float
    kept: bool


class Targets(TraceEvent):
    """The modules targeted by a diagnosis (Eq. 5), with the deficient and teacher-limited ones."""

    event: Literal["targets"] = "targets"
    targets: list[str] = Field(default_factory=list)
    deficient: list[str] = Field(default_factory=list)
    teacher_limited: list[str] = Field(default_factory=list)


class DiagnosisShared(TraceEvent):
    """A bench ablation started from the IOA run's first diagnosis (graph/fork.py): the source, its teacher tokens
    and seconds (charged here too; the events above it are the source's), and this run's targets."""

    event: Literal["diagnosis_shared"] = "diagnosis_shared"
    source: str
    tokens: int = 0
    seconds: float = 0.0
    ablation: str
    targets: list[str] = Field(default_factory=list)


class StagePlanned(TraceEvent):
    """A curriculum stage (Eq. 7-8): its modules, difficulty and item levels."""

    event: Literal["stage_planned"] = "stage_planned"
    modules: list[str] = Field(default_factory=list)
    difficulty: float = 0.0


class Synthesis(TraceEvent):
    """A round's synthesis for one module: items kept and dropped, by reason."""

    event: Literal["synthesis"] = "synthesis"
    kept: int = 0
    dropped: int = 0


class SynthesisYieldEvent(TraceEvent):
    """A synthesis round's yield: candidates written, kept, dropped by reason, teacher tokens paid per kept item."""

    event: Literal["synthesis_yield"] = "synthesis_yield"
    round_tag: str
    item_format: str = "text"
    written: int = 0
    kept: int = 0
    dropped_by_reason: dict[str, int] = Field(default_factory=dict)
    teacher_tokens: int | None = Field(None, description="teacher tokens the round's synthesis paid (cache hits "
                                                         "cost nothing)")
    teacher_tokens_per_kept_item: float | None = None
    budget_cut: bool = Field(False, description="the token budget ran out in the round: it kept what it had paid for "
                                                "and the student trains on that (agents/adapter.py synthesize)")
    not_sent: int | None = Field(None, description="a budget-cut round: the teacher calls the budget could not pay")


class ItemDroppedEvent(TraceEvent):
    """A candidate item that was dropped, with the reason."""

    event: Literal["item_dropped"] = "item_dropped"
    reason: str


class Train(TraceEvent):
    """A training round: items, replay items, optimizer steps, first and last loss, the checkpoint saved."""

    event: Literal["train"] = "train"
    steps: int = 0


class ExamEvent(TraceEvent):
    """An exam after a training round: each examined module's score, mastery ratio and number of items, and the
    items it missed (item id, prompt, reference, the student's answer's first sentence)."""

    event: Literal["exam"] = "exam"
    modules: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    ratios: dict[str, float] = Field(default_factory=dict)
    items: dict[str, int] = Field(default_factory=dict)
    missed: dict[str, list[dict]] = Field(default_factory=dict)


class Forgetting(TraceEvent):
    """A mastered module fell below tau_mastery: it goes back into replay."""

    event: Literal["forgetting"] = "forgetting"
    module: str
    ratio: float
    known_at_start: bool = Field(False, description="mastered at the first diagnosis and never passed in a stage")


class Replan(TraceEvent):
    """The kept edges changed: the stages not yet started were planned again."""

    event: Literal["replan"] = "replan"


class DecisionEvent(TraceEvent):
    """A transition (advance / give_up / remediate / simplify / rediagnose / finish) with its numbers."""

    event: Literal["decision"] = "decision"
    decision: DecisionKind
    reason: str
    numbers: dict[str, float] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    failing: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)


class Fallback(TraceEvent):
    """A field filled by a fallback because the teacher's structured reply did not parse."""

    event: Literal["fallback"] = "fallback"
    field_name: str | None = Field(None, alias="field")
    why: str | None = None


class ReportEvent(TraceEvent):
    """The run's report was written: overall test scores and teacher tokens."""

    event: Literal["report"] = "report"
    teacher_tokens: int = 0


EVENT_KINDS: dict[str, type[TraceEvent]] = {
    cls.model_fields["event"].default: cls
    for cls in (
        NodeStart,
        NodeEnd,
        TeacherCall,
        StructuredOutcome,
        TeacherConcurrency,
        TeacherChoices,
        ModuleDiagnosis,
        EdgeEvent,
        Targets,
        DiagnosisShared,
        StagePlanned,
        Synthesis,
        SynthesisYieldEvent,
        ItemDroppedEvent,
        Train,
        ExamEvent,
        Forgetting,
        Replan,
        DecisionEvent,
        Fallback,
        ReportEvent,
    )
}


def parse_event(data: dict) -> TraceEvent:
    """The typed event of a trace line (a kind not in EVENT_KINDS is read as a plain TraceEvent)."""
    return EVENT_KINDS.get(data.get("event"), TraceEvent).model_validate(data)


def describe_kinds() -> str:
    """One line per event kind: its name and what it records (for `ioa trace --event` help and errors)."""
    return "\n".join(f"{name:<20} {(cls.__doc__ or '').strip().splitlines()[0]}" for name, cls in EVENT_KINDS.items())


# -- the report ----------------------------------------------------------------------------------------------------
class _ReportPart(BaseModel):
    model_config = ConfigDict(extra="allow")  # an arm adds its own fields (a baseline's `baseline` block)


class ModuleResult(_ReportPart):
    """One module's line of report.json: test-split scores of teacher, student before and after, retention."""

    module: str
    name: str | None = None
    teacher: float
    before: float
    after: float
    retention_before: float
    retention_after: float
    teacher_limited: bool = False
    targeted: bool = False
    passed: bool = False
    not_mastered: bool = False
    deficient_at_start: bool = Field(False, description="deficient at the first diagnosis")
    known_at_start: bool = Field(False, description="at or above tau_mastery at the first diagnosis")
    why_not_taught: str | None = Field(None, description="why the module was not taught to mastery (None: taught)")
    decisions: list[str] = Field(default_factory=list)


class Overall(_ReportPart):
    teacher: float
    before: float
    after: float
    retention_before: float
    retention_after: float


class SynthesisYield(_ReportPart):
    """report.json's `synthesis`: the Adapter's yield over the run (agents/synthesis_yield.py)."""

    written: int = Field(0, description="candidate items the teacher wrote")
    kept: int = 0
    dropped_by_reason: dict[str, int] = Field(default_factory=dict, description="reason kind -> count (test_overlap: "
                                              "a test-split question the teacher rewrote)")
    teacher_tokens_per_kept_item: float | None = Field(None, description="every teacher token of the run (all roles) "
                                                       "over the items kept")
    per_round: list[dict] = Field(default_factory=list)


class RunReport(_ReportPart):
    """report.json: the test split after training (never read by a decision), retention, teacher spend, decisions.

    Written by the report node (agents/reporter.py) and, in the same shape, by the baselines; read by `ioa run`'s
    table, the bench and the HTML page."""

    run_id: str
    arm: str = "ioa"
    overall: Overall
    teachable_overall: dict[str, float] | None = None
    deficient_overall: Overall | None = Field(None, description="the modules deficient at the first diagnosis")
    known_overall: Overall | None = Field(None, description="the modules known at the first diagnosis (forgetting)")
    modules: list[ModuleResult]
    teacher_limited: list[str] = Field(default_factory=list)
    teacher_tokens: int = Field(description="input + output tokens of every teacher call, at what each cost when "
                                            "first paid")
    usage: dict[str, dict] = Field(default_factory=dict)
    optimizer_steps: int = 0
    rounds: int = 0
    cycles: int = 1
    decisions: list[dict] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    status: Literal["finished", "stopped"] = "finished"
    stop_reason: str | None = None
    wall_s: float | None = None
    synthesis: SynthesisYield | None = None
    context_passages: int | None = Field(None, description="passages of its context the teacher read per question"
                                                           " (teacher.context_passages; 0: the whole context)")
