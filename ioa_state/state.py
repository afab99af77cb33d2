"""The typed learner state that every agent reads and updates.

Small by design: items, generations and student weights live as files in the run directory and appear here only as
ArtifactRef (relative path + sha256). Nodes return partial updates (plain dicts of these fields); every list is
replaced whole by the node that changes it, so the state at any checkpoint is self-contained.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BUDGET_STOP = "teacher token budget spent"  # how a run stopped at teacher.token_budget begins its stop_reason

DecisionKind = Literal["advance", "give_up", "remediate", "simplify", "rediagnose", "finish"]
Mode = Literal["initial", "remediate", "simplify"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Model):
    """One task item: a prompt, an optional reference answer and optional labels."""

    id: str
    prompt: str
    reference: str | None = None
    category: str | None = None
    split: Literal["seed", "probe", "test"] | None = None
    meta: dict = Field(default_factory=dict)


class ArtifactRef(_Model):
    """A file in the run directory, referenced by path relative to it and its content hash."""

    path: str
    sha256: str
    kind: Literal["items", "student", "generations", "report", "other"] = "other"
    stage: int | None = None
    round: int | None = None
    count: int | None = None


class Module(_Model):
    """A knowledge module: a group of items found in the data and named by the teacher."""

    id: str
    name: str
    description: str = ""
    level: int = Field(
        1, ge=1, le=3, description="teacher's difficulty label: 1 introductory, 2 intermediate, 3 advanced"
    )
    labels: list[str] = Field(default_factory=list, description="data category labels merged into this module")
    seed_ids: list[str] = Field(default_factory=list)
    gate_ids: list[str] = Field(default_factory=list, description="probe half that scores, mastery and Eq. 9 read")
    remedial_ids: list[str] = Field(
        default_factory=list, description="probe half whose wrong answers remedial synthesis may show"
    )
    test_ids: list[str] = Field(default_factory=list, description="test items of this module: the final report only")
    item_levels: dict[str, int] = Field(
        default_factory=dict, description="teacher's difficulty label (1-3) per probe item"
    )
    teacher_score: float | None = None
    teacher_level_scores: dict[int, float] = Field(
        default_factory=dict, description="teacher's gate score per item level"
    )
    passed_level: int = Field(0, ge=0, le=3, description="highest item level the student has passed (0: none)")
    teacher_limited: bool = False
    fallbacks: list[str] = Field(
        default_factory=list,
        description="fields filled by a fallback because the teacher's reply did not parse, with why",
    )


class Observation(_Model):
    """Student scores at one checkpoint (Eq. 3 reads these): module -> mean gate score and item count."""

    checkpoint: str
    source: Literal["diagnose", "examine"] = "examine"
    cycle: int
    round: int
    trained: list[str] = Field(
        default_factory=list, description="modules trained at least once before this observation"
    )
    scores: dict[str, float] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    level_scores: dict[str, dict[int, float]] = Field(default_factory=dict)


class Edge(_Model):
    """A prerequisite edge src -> dst (src must be learned before dst)."""

    src: str
    dst: str
    prior: float = Field(0.0, ge=0, le=1, description="teacher's judged strength")
    measured: float | None = Field(None, description="Eq. 3 estimate from observations, when both conditions have data")
    n_obs: int = 0
    strength: float = Field(0.0, ge=0, le=1)
    source: Literal["prior", "prior+measured"] = "prior"
    kept: bool = False
    broken_cycle: bool = False


class Stage(_Model):
    """One curriculum stage: modules taught together, passed when all reach tau_mastery."""

    index: int
    modules: list[str]
    difficulty: float
    status: Literal["pending", "active", "passed", "gave_up"] = "pending"
    rounds: int = 0
    min_ratio_history: list[float] = Field(default_factory=list)


class Decision(_Model):
    """A transition with the numbers and thresholds behind it."""

    kind: DecisionKind
    cycle: int
    stage: int | None
    round: int
    reason: str
    numbers: dict[str, float] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    failing: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list, description="the stage's modules when the decision was taken")


class Usage(_Model):
    """Teacher tokens spent by one role (agent)."""

    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0
    failures: int = 0
    cost_usd: float = 0.0


class LearnerState(_Model):
    """Everything a run knows, checkpointed after every node."""

    run_id: str
    cycle: int = 0
    phase: str = "start"
    modules: dict[str, Module] = Field(default_factory=dict)
    observations: list[Observation] = Field(default_factory=list)
    gap: dict[str, float] = Field(default_factory=dict)
    deficient: list[str] = Field(default_factory=list)
    first_deficient: list[str] = Field(
        default_factory=list, description="modules deficient at the first diagnosis (the report's retention_deficient)"
    )
    known: list[str] = Field(
        default_factory=list, description="modules at or above tau_mastery at the first diagnosis (watched for "
        "forgetting)"
    )
    severity: dict[str, float] = Field(default_factory=dict)
    targets: list[str] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    stages: list[Stage] = Field(default_factory=list)
    current_stage: int = 0
    round_in_stage: int = 0
    total_rounds: int = 0
    mode: Mode = "initial"
    level: dict[str, int] = Field(default_factory=dict, description="difficulty level each module's items target next")
    trained: list[str] = Field(default_factory=list)
    passed: list[str] = Field(default_factory=list)
    not_mastered: list[str] = Field(default_factory=list)
    forgetting: list[str] = Field(
        default_factory=list, description="mastered modules (passed, or known from the start) that fell below "
        "tau_mastery: back in replay"
    )
    decisions: list[Decision] = Field(default_factory=list)
    item_files: list[ArtifactRef] = Field(
        default_factory=list, description="kept synthesized items, one file per round"
    )
    dropped_files: list[ArtifactRef] = Field(
        default_factory=list, description="dropped candidates with the reason for each"
    )
    wrong_answers: ArtifactRef | None = None
    student: ArtifactRef | None = None
    student_history: list[ArtifactRef] = Field(default_factory=list)
    optimizer_steps: int = 0
    usage: dict[str, Usage] = Field(default_factory=dict)
    test_before: dict[str, float] = Field(default_factory=dict)
    test_after: dict[str, float] = Field(default_factory=dict)
    test_teacher: dict[str, float] = Field(default_factory=dict)
    status: Literal["running", "finished", "stopped"] = "running"
    stop_reason: str | None = None
    report: ArtifactRef | None = None

    def last_observation(self) -> Observation | None:
        return self.observations[-1] if self.observations else None

    def stage(self) -> Stage | None:
        return self.stages[self.current_stage] if 0 <= self.current_stage < len(self.stages) else None
