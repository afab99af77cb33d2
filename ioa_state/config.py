"""Run configuration: every knob of a run, validated at load time.

The thresholds carry the paper's names (see ../shared/docs/ioa-algorithm.md); a value out of range is a
validation error when the config is loaded, never a silent default. No I/O beyond reading a YAML file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Unit = Field(ge=0.0, le=1.0)


class Thresholds(_Strict):
    """The IOA thresholds (algorithm page, table at the top). Names are the paper's."""

    tau_gap: float = Field(0.3, ge=0, le=1, description="module is deficient when its relative gap exceeds this (Eq."
                                                        " 2)")
    tau_high: float = Field(0.9, ge=0, le=1, description="mastery ratio at/above which a prerequisite counts as"
                                                         " mastered (Eq. 3)")
    tau_low: float = Field(0.7, ge=0, le=1, description="mastery ratio below which a prerequisite counts as not"
                                                        " mastered (Eq. 3)")
    tau_dep: float = Field(0.3, ge=0, le=1, description="a prerequisite edge is kept when its strength exceeds this")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the gap against structural importance in severity"
                                                      " (Eq. 4)")
    tau_zpd: float = Field(0.15, ge=0, le=1, description="largest difficulty step between consecutive stages (Eq. 8)")
    tau_mastery: float = Field(0.9, ge=0, le=1, description="a stage passes when every module's mastery ratio reaches"
                                                            " this (Eq. 9)")
    target_fraction: float = Field(0.25, gt=0, le=1, description="share of deficient modules targeted per diagnosis"
                                                                 " (Eq. 5)")
    max_remedial_rounds: int = Field(5, ge=0, description="rounds after a stage's first before its failing modules are"
                                                          " left")
    min_progress: float = Field(0.02, ge=0, le=1, description="rise of the stage's minimum mastery ratio that counts"
                                                              " as progress")
    teacher_floor: float = Field(0.3, ge=0, le=1, description="a module whose teacher score is below this is"
                                                              " teacher-limited")
    min_probe_items: int = Field(8, ge=2, description="probe items a module needs; smaller groups are merged")
    samples_per_seed: int = Field(10, ge=1, description="items the teacher writes per seed item (the paper's J_i)")
    vote_samples: int = Field(5, ge=1, description="teacher samples drawn to verify an item without a reference")
    vote_agree: int = Field(3, ge=1, description="how many of vote_samples must agree")
    replay_fraction: float = Field(0.2, ge=0, le=1, description="share of each round drawn from earlier stages' items")
    max_cycles: int = Field(6, ge=1, description="most diagnose -> curriculum cycles per run (§4: a new diagnosis"
                                                 " while deficient, teachable modules remain)")
    eps: float = Field(1e-6, gt=0, lt=1e-2, description="guards every division")

    @model_validator(mode="after")
    def _ordered(self) -> "Thresholds":
        if self.tau_low > self.tau_high:
            raise ValueError(f"tau_low ({self.tau_low}) must not exceed tau_high ({self.tau_high})")
        if self.vote_agree > self.vote_samples:
            raise ValueError(f"vote_agree ({self.vote_agree}) must not exceed vote_samples ({self.vote_samples})")
        return self


class Adaptations(_Strict):
    """The five Adapter adaptations (algorithm §3); each is a prompt in prompts/ and can be switched off."""

    concretization: bool = True
    decomposition: bool = True
    cognitive_load: bool = True
    template: bool = True
    plain_language: bool = True

    def enabled(self) -> list[str]:
        return [name for name, on in self.model_dump().items() if on]


class AdapterConfig(_Strict):
    """How the Adapter verifies, deduplicates and sizes the items it keeps (algorithm §3)."""

    verify_min_score: float = Field(0.999, ge=0, le=1, description="checker score a rewritten item's answer needs "
                                    "against its source's reference (exact-style checkers: contains, numeric, exact, "
                                    "code)")
    verify_min_rouge: float = Field(0.5, ge=0, le=1, description="the same bar when the pack's checker is rouge "
                                    "(a free-text reference: a paraphrase scores well below 1)")
    dedup_rouge: float = Field(0.7, ge=0, le=1, description="ROUGE-L above which a candidate duplicates a kept or gate "
                               "item (the algorithm page's rule)")
    test_overlap_rouge: float = Field(0.9, ge=0, le=1, description="ROUGE-L over content words (function words left "
                                      "out) at or above which a synthesized question copies a test-split question "
                                      "and is dropped (decontamination, every arm)")
    short_answer_words: int = Field(30, ge=5, description="longest answer asked for while the module's mastery ratio "
                                    "is below tau_low (a weak student gets shorter items)")
    answer_words: int = Field(60, ge=5, description="longest answer asked for otherwise")
    top_up_passes: int = Field(2, ge=0, description="extra synthesis passes for a module that kept fewer than "
                               "min_items items (each draws fresh samples, also from the module's seeds)")
    item_format: Literal["text", "json"] = Field("text", description="text: the teacher writes a question, then "
                                                 "answers it (two free-text calls); json: one structured call writes "
                                                 "the question, its steps and its final answer (constrained decoding "
                                                 "where the backend has it; benchmarks/bench_yield.py measures which "
                                                 "costs fewer teacher tokens per kept item)")
    question_sheet: bool = Field(False, description="the question call (item_format text) carries the knowledge sheet "
                                 "as its system prompt; off: the source question alone, which is all a rewrite "
                                 "needs (the answer call always has the sheet); the same for every bench arm")
    seed_examples: bool = Field(True, description="a module's first round (its items written from its seed items) "
                                "also keeps each seed item itself as a worked example: the seed's question, the "
                                "teacher's answer under the adaptations, verified and deduplicated like every item "
                                "(a seed that duplicates a gate item is dropped); the most concrete case comes "
                                "first. Every bench arm trains on the teacher's answers to its seeds")
    remedial_examples: bool = Field(False, description="a remedial round (its items written from the student's wrong "
                                    "answers) also takes each remedial-source item the student got wrong as a "
                                    "candidate: its own question, the teacher's answer under the adaptations, "
                                    "verified against its reference and deduplicated like every item, before the "
                                    "rewrites (the concrete case the student missed first; never a gate item). Off: "
                                    "on the embedded default it passed more stages but did not raise test retention "
                                    "and cost the known modules (README Results, bench12)")
    text_form: bool = Field(True, description="item_format text on an in-process teacher (hf:, vllm:): the question "
                            "call is generated under a grammar (one line ending in '?') and, with adaptations."
                            "template, the answer call too (up to 3 step lines, then 'Answer: ...'); remote teachers "
                            "get the prompt alone (agents/item_forms.py; benchmarks/bench_yield.py measures it)")
    answer_steps_by_level: bool = Field(False, description="under the answer form, a candidate's answer may have as "
                                        "many step lines as its module's current difficulty level (1-3) instead "
                                        "of 3 (agents/item_forms.py answer_form); off: 3 at every level. "
                                        "benchmarks/bench_yield.py's text-form-nosheet-levelsteps arm measures it")


# the `role=` of every teacher call the agents make (agents/, baselines/); tests keep this list in step
TEACHER_ROLES = ("diagnostician", "examiner", "adapter", "trainer")


class TeacherConfig(_Strict):
    """Which chat model teaches, and how it is called.

    spec: `hf:<id|path|smollm2>` (in-process transformers; `hf:smollm2` is the packaged SmolLM2-135M-Instruct),
    `openai:<model>` (key from OPENAI_API_KEY), `openai-compatible:<model>` with `base_url` (vLLM, llama.cpp, Ollama,
    SGLang), `vllm:<model>` (in-process vLLM, optional extra).
    """

    spec: str = "hf:smollm2"
    base_url: str | None = None
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key (never"
                                                           " the key)")
    context: str | None = Field(None, description="system prompt the teacher (not the student) is given")
    context_file: str | None = Field(None, description="file whose text is the teacher's context; pack context if"
                                                       " unset")
    context_passages: int | None = Field(None, ge=0, description="give the teacher, per question, the context's"
                                         " opening and this many passages most similar to the question"
                                         " (agents/context_passages.py); 0: the whole context; unset: the pack's"
                                         " choice for its own context, else 0")
    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature for synthesis")
    max_tokens: int = Field(96, ge=8, description="longest teacher reply, in tokens")
    question_max_tokens: int = Field(40, ge=8, description="longest new question the teacher writes (raise for long"
                                                           " problems)")
    concurrency: int = Field(16, ge=1, description="teacher requests in flight at once (batch size for in-process"
                                                   " models)")
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_retries: int = Field(4, ge=0, description="retries per call (tenacity, exponential backoff with jitter)")
    retry_budget: int = Field(200, ge=0, description="retries allowed in the whole run")
    timeout_s: float = Field(60.0, gt=0)
    max_reasks: int = Field(1, ge=0, description="re-asks when a structured reply does not parse")
    token_budget: int | None = Field(None, ge=1, description="stop the run cleanly once this many teacher tokens are"
                                                             " spent")
    shared_cache: str | None = Field(None, description="path of a teacher-call cache shared across runs")
    roles: dict[str, str] = Field(default_factory=dict, description="per-role spec overrides, e.g. {examiner: "
                                  "'openai:gpt-4o'}; roles: diagnostician, examiner, adapter, trainer")
    max_failure_share: float = Field(0.1, ge=0, le=1, description="stop the run (resumable) when more than this share"
                                                                  " of one teacher batch's calls fail after their"
                                                                  " retries; 1 never stops")
    adaptive_concurrency: bool = Field(True, description="halve the requests in flight on a timeout, 429 or 503 and"
                                                         " grow back by one after successes (AIMD), between 1 and"
                                                         " `concurrency`")
    concurrency_growth_after: int = Field(8, ge=1, description="successful requests in a row before adaptive"
                                                               " concurrency allows one more in flight")

    @field_validator("context_file")
    @classmethod
    def _context_file_exists(cls, v: str | None) -> str | None:
        # read only when the first agent asks, after the models load: check it here (relative to the cwd)
        if v is not None and not Path(v).expanduser().is_file():
            rel = "" if Path(v).expanduser().is_absolute() else f" (a relative path is taken from {Path.cwd()})"
            raise ValueError(f"file {v} not found{rel}: give the path of an existing text file")
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TEACHER_ROLES))
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}: the teacher's roles are {', '.join(TEACHER_ROLES)}")
        return v


# The defaults of each training profile, filled in where a config leaves a field out (so the resolved config that a
# run saves carries the values used). `cpu`: the embedded default as measured on 2 cores (lr 5e-5 constant, no
# weight decay, LoRA on every linear layer); `paper`: the paper's App. E recipe for a GPU student.
STUDENT_PROFILES: dict[str, dict] = {
    "cpu": {"learning_rate": 5e-5, "weight_decay": 0.0, "adam_beta2": 0.999, "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0, "lora_dropout": 0.0,
            "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
    "paper": {"learning_rate": 2e-5, "weight_decay": 0.01, "adam_beta2": 0.95, "lr_scheduler_type": "cosine",
              "warmup_ratio": 0.03, "lora_dropout": 0.05, "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
}
PAPER_LORA_LR = 1e-4


class StudentConfig(_Strict):
    """The student and how it is trained (the trainer node). Field names are TRL's/transformers' where they mean the
    same (training/trainer.py `sft_config` maps the rest); fields left out take the `profile`'s defaults."""

    source: str = Field("smollm2", description="`smollm2` (the packaged GGUF), a hub id, a local directory, or `tiny`"
                                               " (built from a config, for tests)")
    keep_layers: list[int] | None = Field(None, description="initialise a smaller student from these teacher layers")
    profile: Literal["cpu", "paper"] = Field("cpu", description="defaults for the fields below left unset: cpu"
                                                                " (measured on 2 cores) | paper (App. E, GPU)")
    engine: Literal["trl", "loop"] = Field("trl", description="trl: TRL's SFTTrainer; loop: the hand-written AdamW"
                                                              " loop (for comparison)")
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path (profile: cpu 0, paper 0.05)")
    lora_targets: list[str] = Field(default_factory=lambda: list(STUDENT_PROFILES["cpu"]["lora_targets"]),
                                    description="module names LoRA wraps, those the model has (paper: q/k/v/o)")
    learning_rate: float = Field(5e-5, gt=0, description="peak learning rate (profile: cpu 5e-5; paper 2e-5 full, 1e-4"
                                                         " LoRA)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (paper 0.01)")
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1, description="(paper 0.95)")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping norm (0: none)")
    optim: Literal["adamw_torch_fused", "adamw_torch"] = Field(
        "adamw_torch_fused", description="AdamW's implementation (TRL's name): fused, one kernel over every parameter"
        " (the same update; SmolLM2's optimizer step alone 0.21 s against 1.4-2.3 s on one CPU core, a whole training"
        " step at the demo's sizes 0.92x the CPU seconds: benchmarks/bench_training.py --optims), or torch's"
        " per-tensor loop")
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine"] = Field(
        "constant", description="learning-rate schedule (paper: cosine)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of the steps spent warming up (paper 0.03)")
    epochs: int = Field(3, ge=1, description="passes over a round's items (TRL's num_train_epochs)")
    batch_size: int = Field(6, ge=1, description="global batch: examples per optimizer step over all processes")
    gradient_checkpointing: bool | None = Field(None, description="activation checkpointing (null: on CUDA only)")
    max_length: int = Field(192, ge=16, description="student context length; caps item length")
    max_new_tokens: int = Field(48, ge=4, description="longest student answer in exams")
    exam_batch_size: int = Field(32, ge=1, description="student answers generated together in exams")
    bf16: bool = Field(True, description="bf16 autocast where the hardware supports it")
    device: str = Field("auto", description="auto | cpu | cuda")
    num_processes: int = Field(1, ge=1, description="above 1: each round trains in an `accelerate launch` subprocess"
                                                    " (DDP)")
    accelerate_config: str | None = Field(None, description="accelerate config file (DDP, FSDP, DeepSpeed); implies a"
                                                            " subprocess")
    launch_timeout_s: float = Field(7200.0, gt=0, description="a training subprocess running longer is killed (the"
                                                              " round fails, resumable)")
    loss: Literal["sft", "kd", "sft+kd"] = Field("sft", description="sft: answer tokens; kd: the local teacher's"
                                                                    " next-token distribution on them; sft+kd: both")
    kd_temperature: float = Field(1.0, gt=0, description="softmax temperature of the KL term (loss scaled by T^2)")
    kd_weight: float = Field(0.5, ge=0, le=1, description="weight of the KL term in sft+kd (SFT gets 1 - it)")

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data):
        if not isinstance(data, dict):
            return data
        profile = data.get("profile", "cpu")
        if profile not in STUDENT_PROFILES:
            return data  # the Literal check reports it
        filled = dict(STUDENT_PROFILES[profile], **data)
        if profile == "paper" and data.get("lora") and "learning_rate" not in data:
            filled["learning_rate"] = PAPER_LORA_LR
        return filled

    @model_validator(mode="after")
    def _kd_in_process(self) -> "StudentConfig":
        if self.loss != "sft" and (self.num_processes > 1 or self.accelerate_config or self.engine != "trl"):
            raise ValueError(f"student.loss {self.loss} needs the teacher in the training process: use it with "
                             "engine trl, num_processes 1 and no accelerate_config")
        return self


class TaskConfig(_Strict):
    """The task pack (the domain) and its splits."""

    pack: str = Field("zorbia-mixed", description="zorbia-mixed (embedded default) | zorbia | gsm8k | humaneval | "
                                                  "jsonl")
    path: str | None = Field(None, description="data file for the jsonl pack")
    prompt_field: str = "prompt"
    answer_field: str | None = "answer"
    category_field: str | None = "category"
    checker: Literal["auto", "contains", "numeric", "exact", "rouge", "code"] = "auto"
    n_seed: int | None = Field(None, ge=1, description="items in the seed split (pack default if unset)")
    n_probe: int | None = Field(None, ge=1)
    n_test: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1, description="use only the first N items of the pack")
    split_seed: int = 0


class RunConfig(_Strict):
    """A whole run. Loaded from YAML by `load_config`; resolved copy saved as runs/<id>/config.yaml."""

    run_id: str | None = None
    runs_dir: str = "runs"
    seed: int = 0
    task: TaskConfig = Field(default_factory=TaskConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    adaptations: Adaptations = Field(default_factory=Adaptations)
    adapter: AdapterConfig = Field(default_factory=AdapterConfig)
    min_items: int = Field(2, ge=1, description="a module's stage needs at least this many kept items (each round at"
                                                " least one new one), else the run stops")
    watch_items: int = Field(4, ge=0, description="gate items of each untrained target scored at every exam (Eq. 3)")
    max_items_per_module: int | None = Field(None, ge=1, description="cap on kept items per module per round")
    max_rounds_total: int = Field(40, ge=1, description="safety cap on synthesize-train-examine rounds in a run")
    ablation: Literal["none", "no_identifier", "no_organizer", "no_adapter"] = Field(
        "none", description="switch one IOA component off (for `ioa bench`): no_identifier targets every teachable "
                            "module with uniform weight; no_organizer trains each diagnosis's targets as one stage, "
                            "once, no mastery gate, no ZPD; no_adapter keeps the teacher's items as first written "
                            "(no adaptation, verification, dedup)")

    @model_validator(mode="after")
    def _kd_teacher_local(self) -> "RunConfig":
        spec = self.teacher.roles.get("trainer", self.teacher.spec)
        if self.student.loss != "sft" and not spec.startswith("hf:"):
            raise ValueError(f"student.loss {self.student.loss} needs an hf: teacher (its logits, in this process), "
                             f"got {spec!r} (set teacher.roles.trainer to an hf: model sharing the student's "
                             "tokenizer)")
        return self

    @field_validator("run_id")
    @classmethod
    def _safe_id(cls, v: str | None) -> str | None:
        if v is not None and (not v or "/" in v or v.startswith(".")):
            raise ValueError(f"run_id {v!r} must be a plain name")
        return v


EMBEDDED_DEFAULT: dict = {
    # What `ioa run` with no config runs: the zorbia-mixed pack (the Zorbia sheet's facts and general knowledge the
    # student already has), SmolLM2 as teacher (with the knowledge sheet) and student (without it), the paper's
    # thresholds except one.
    "thresholds": {"max_remedial_rounds": 2},  # paper: 5; a stalled stage gives up after 3 rounds, not 6
    # SmolLM2-135M never repaired its JSON when re-asked (0 of 12 in our runs); 32 rows a batch make the in-process
    # teacher's sampling about 20% faster than 16 on 2 cores, with the same replies (rows are sampled independently)
    # the default budget (§5: arms are compared at one teacher-token budget): the first diagnosis (about 51k tokens,
    # 28k of them the test split's teacher answers) and a few rounds; sized so that a run takes minutes, not an hour
    "teacher": {"max_reasks": 0, "concurrency": 32, "token_budget": 120_000},
}


class ConfigError(ValueError):
    """A user-caused configuration problem; the CLI prints its message as one line."""


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Read a YAML config (or the embedded default, EMBEDDED_DEFAULT over RunConfig's defaults, when path is None)
    and validate it. A YAML file starts from RunConfig's defaults (the paper's thresholds)."""
    import copy

    import yaml
    from pydantic import ValidationError

    data: dict = copy.deepcopy(EMBEDDED_DEFAULT) if path is None else {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {p} is not valid YAML{yaml_where(e)}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {p} must be a mapping of fields, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        _override(data, dotted, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid config field {where}: {msg} (got {err.get('input')!r})") from None


def yaml_where(e: Exception) -> str:
    """' at line L, column C: <problem>' of a YAML error (one line), from its problem_mark where it has one."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}"


def _override(data: dict, dotted: str, value) -> None:
    """Set data[a][b][c] = value for a dotted key 'a.b.c' (a `--set`); a part that is a value, not a group of
    fields, is a ConfigError."""
    *parents, leaf = dotted.split(".")
    if not all(parents) or not leaf:
        raise ConfigError(f"--set {dotted}=...: the key must be a dotted field name, e.g. thresholds.tau_gap")
    node, seen = data, []
    for key in parents:
        seen.append(key)
        if node.get(key) is None:
            node[key] = {}
        elif not isinstance(node[key], dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(seen)} is a value ({node[key]!r}), not a group of fields; "
                              f"set it with --set {'.'.join(seen)}=VALUE")
        node = node[key]
    node[leaf] = value
