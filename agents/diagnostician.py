"""The diagnostician (Identifier, algorithm §1): what to teach.

First diagnosis: group seed and probe items into knowledge modules from the data (category labels, else TF-IDF
clusters), merge groups under `min_probe_items`, have the teacher describe and level each module (and name it, unless
the data labels it: `card_name`) and level each probe item (structured output; an item's level one digit under
agents/item_forms.LEVEL_FORM; a field it fails to give is filled by a recorded fallback), split probes into gate and
remedial-source halves, score teacher and student on the gate items, ask the teacher for a prerequisite prior.
Every diagnosis: gaps (Eq. 2), deficient and teacher-limited modules, edges (Eq. 3), severity (Eq. 4), targets (Eq. 5).
"""
from __future__ import annotations

import math
import random
import re
from collections import defaultdict

from pydantic import BaseModel, Field

from agents import item_forms, scoring
from agents.runtime import Services
from ioa_state import Item, LearnerState, Module, Observation
from ioa_state import pedagogy as ped
from prompts import render

# the prerequisite prior lists up to 8 edges of two module names each: under a grammar its JSON must close in this many
PRIOR_MAX_TOKENS = 400


class ModuleCard(BaseModel):
    """How the teacher describes one knowledge module."""

    name: str = Field(max_length=40, description="a short topic name, two or three words")
    description: str = Field(max_length=160, description="one line saying what the topic covers")  # a grammar closes it
    level: int = Field(ge=1, le=3, description="1 introductory, 2 intermediate, 3 advanced")


class PrerequisiteEdge(BaseModel):
    prerequisite: str = Field(max_length=40, description="the topic that must be known first")
    topic: str = Field(max_length=40, description="the topic that needs it")
    strength: float = Field(ge=0, le=1, description="0 not needed .. 1 essential")


class PrerequisiteList(BaseModel):
    """The teacher's judgement of which topics build on which (the prior of Eq. 3)."""

    edges: list[PrerequisiteEdge] = Field(default_factory=list, max_length=8)  # bounded: fits PRIOR_MAX_TOKENS


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "module"


def group_items(items: list[Item], min_probe: int, seed: int) -> dict[str, list[Item]]:
    """Seed/probe/test items grouped into modules: by category label, else TF-IDF k-means; small groups merged."""
    pool = [it for it in items if it.split in ("seed", "probe")]
    if all(it.category for it in pool):
        groups: dict[str, list[Item]] = defaultdict(list)
        for it in pool:
            groups[_slug(it.category)].append(it)
    else:
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import TfidfVectorizer

        n_probe = sum(it.split == "probe" for it in pool)
        k = max(1, min(len(pool), n_probe // (2 * min_probe)))
        vec = TfidfVectorizer(stop_words="english").fit([it.prompt for it in pool])
        labels = (
            KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(vec.transform([it.prompt for it in pool]))
            if k > 1
            else [0] * len(pool)
        )
        groups = defaultdict(list)
        for it, lab in zip(pool, labels):
            groups[f"cluster-{int(lab)}"].append(it)
    groups = _merge_small(dict(groups), min_probe)
    _assign_tests(groups, [it for it in items if it.split == "test"])
    return groups


def _centroids(groups: dict[str, list[Item]]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    names = sorted(groups)
    vec = TfidfVectorizer().fit([it.prompt for g in groups.values() for it in g])
    cents = {n: vec.transform([" ".join(it.prompt for it in groups[n] if it.split != "test")]) for n in names}
    return vec, cents


def _merge_small(groups: dict[str, list[Item]], min_probe: int) -> dict[str, list[Item]]:
    def probes(n):
        return sum(it.split == "probe" for it in groups[n])

    while len(groups) > 1:
        small = sorted((n for n in groups if probes(n) < min_probe), key=lambda n: (probes(n), n))
        if not small:
            break
        _, cents = _centroids(groups)
        name = small[0]
        nearest = max((n for n in groups if n != name), key=lambda n: ((cents[name] @ cents[n].T).toarray()[0, 0], n))
        groups[nearest] = groups[nearest] + groups.pop(name)
    return groups


def _assign_tests(groups: dict[str, list[Item]], tests: list[Item]) -> None:
    by_label = {_slug(it.category): n for n, g in groups.items() for it in g if it.category}
    unplaced = []
    for it in tests:
        if it.category and _slug(it.category) in by_label:
            groups[by_label[_slug(it.category)]].append(it)
        else:
            unplaced.append(it)
    if unplaced:
        vec, cents = _centroids(groups)
        for it in unplaced:
            v = vec.transform([it.prompt])
            groups[max(cents, key=lambda n: ((v @ cents[n].T).toarray()[0, 0], n))].append(it)


def build_modules(svc: Services) -> dict[str, Module]:
    """Modules from the data, named and levelled by the teacher, probes split into gate and remedial halves."""
    th = svc.cfg.thresholds
    groups = group_items(list(svc.items.values()), th.min_probe_items, svc.cfg.seed)
    modules: dict[str, Module] = {}
    for mid, group in sorted(groups.items()):
        probes = [it.id for it in group if it.split == "probe"]
        random.Random(f"{svc.cfg.seed}:{mid}").shuffle(probes)
        half = math.ceil(len(probes) / 2)
        labels = sorted({it.category for it in group if it.category})
        modules[mid] = Module(
            id=mid,
            name=labels[0] if len(labels) == 1 else mid,
            labels=labels,
            seed_ids=[it.id for it in group if it.split == "seed"],
            gate_ids=sorted(probes[:half]),
            remedial_ids=sorted(probes[half:]),
            test_ids=[it.id for it in group if it.split == "test"],
        )
    _describe(svc, modules)
    _label_levels(svc, modules)
    return modules


def _describe(svc: Services, modules: dict[str, Module]) -> None:
    from agents.teacher import TeacherRequest

    reqs = []
    for m in modules.values():
        examples = [svc.items[i].prompt for i in (m.seed_ids + m.gate_ids)[:6]]
        p = render("module_describe", examples="\n".join(f"- {e}" for e in examples))
        reqs.append(TeacherRequest(messages=[{"role": "user", "content": p.text}], temperature=0.0, max_tokens=96,
                                   role="diagnostician", tag={"module": m.id, "template": p.template}))
    replies = svc.teacher.ask_structured(reqs, ModuleCard)
    shared = shared_names([card_name(m, rep.value) for m, rep in zip(modules.values(), replies)])
    for m, rep in zip(modules.values(), replies):
        if rep.value is not None:
            name = card_name(m, rep.value)
            if name.casefold() in shared:  # the prior names modules: a name two modules share maps to neither
                m.fallbacks.append(f"name: the teacher gave {name!r} to more than one module; kept the data label")
                name = ""
            m.name, m.description, m.level = name or m.name, rep.value.description.strip()[:200], rep.value.level
        else:
            m.description = f"items labelled {', '.join(m.labels) or m.id}"
            m.fallbacks.append(
                f"name/description/level: teacher reply did not parse ({rep.error}); kept the data label and level 1"
            )


def card_name(m: Module, card: ModuleCard | None) -> str:
    """A module's name: the data's own label where the module has exactly one (the user named it; a small teacher's
    card named Zorbia's capitals "Paris" and its plurals after the prompt's "two-word" instruction), else the teacher's
    card name; "" without a card."""
    if len(m.labels) == 1:
        return m.labels[0].strip()[:60]
    return card.name.strip()[:60] if card is not None else ""


def shared_names(names: list[str]) -> set[str]:
    """The (casefolded) names given to more than one module."""
    seen = [n.strip()[:60].casefold() for n in names if n.strip()]
    return {n for n in seen if seen.count(n) > 1}


def _label_levels(svc: Services, modules: dict[str, Module]) -> None:
    from agents.teacher import TeacherRequest

    pairs = [(m, i) for m in modules.values() for i in m.gate_ids + m.remedial_ids]
    reqs = []
    for m, i in pairs:
        p = render("item_level", question=svc.items[i].prompt)
        reqs.append(TeacherRequest(messages=[{"role": "user", "content": p.text}], temperature=0.0, max_tokens=6,
                                   role="diagnostician", form=item_forms.LEVEL_FORM,
                                   tag={"module": m.id, "item": i, "template": p.template}))
    failed: dict[str, int] = defaultdict(int)
    for (m, i), rep in zip(pairs, svc.teacher.ask(reqs)):
        level = parse_level(rep.text)
        if level is not None:
            m.item_levels[i] = level
        else:
            m.item_levels[i] = m.level
            failed[m.id] += 1
    for mid, n in failed.items():
        modules[mid].fallbacks.append(
            f"item levels: {n} teacher replies gave no level 1-3; "
            f"those items take the module level {modules[mid].level}"
        )


def parse_level(text: str | None) -> int | None:
    """The level in a one-digit reply (or a {"level": n} object); None when the reply names no level 1-3."""
    found = re.findall(r"(?<![\d.])([123])(?![\d.])", text or "")
    return int(found[0]) if found else None


def prerequisite_prior(svc: Services, modules: dict[str, Module]) -> dict[tuple[str, str], float]:
    """The teacher's judged prerequisite strengths, mapped from names back to module ids."""
    from agents.teacher import TeacherRequest

    if len(modules) < 2:
        return {}
    listing = "\n".join(f"- {m.name}: {m.description}" for m in modules.values())
    p = render("prerequisites", modules=listing)
    rep = svc.teacher.ask_structured(
        [
            TeacherRequest(
                messages=[{"role": "user", "content": p.text}],
                temperature=0.0,
                max_tokens=PRIOR_MAX_TOKENS,
                role="diagnostician",
                tag={"template": p.template},
            )
        ],
        PrerequisiteList,
    )[0]
    if rep.value is None:
        svc.trace.emit("fallback", node="diagnose", field="prerequisite prior", why=rep.error, used="no prior edges")
        return {}
    by_name = {m.name.lower(): m.id for m in modules.values()} | {m.id: m.id for m in modules.values()}
    prior = {}
    for e in rep.value.edges:
        src, dst = by_name.get(e.prerequisite.strip().lower()), by_name.get(e.topic.strip().lower())
        if src and dst and src != dst:
            prior[(src, dst)] = max(prior.get((src, dst), 0.0), e.strength)
    return prior


def first_diagnosis(svc: Services) -> tuple[dict[str, Module], dict[tuple[str, str], float], dict]:
    """Modules from the data, the teacher's gate scores, the prerequisite prior, and the test split's teacher and
    student-before scores (the report's reference; no decision reads them)."""
    th = svc.cfg.thresholds
    modules = build_modules(svc)
    module_of = {i: k for k, m in modules.items() for i in m.gate_ids + m.test_ids}
    gate_items = [svc.items[i] for m in modules.values() for i in m.gate_ids]
    t_scores = scoring.check_all(svc, gate_items, scoring.teacher_answers(svc, gate_items, "examiner", module_of,
                                                                          node="diagnose"))
    for m in modules.values():
        m.teacher_score = scoring.mean([t_scores[i] for i in m.gate_ids if i in t_scores])  # failed calls skipped
        m.teacher_level_scores = scoring.level_scores(m.gate_ids, m.item_levels, t_scores)
        m.teacher_limited = m.teacher_score < th.teacher_floor
    prior = prerequisite_prior(svc, modules)
    test_ids = {k: m.test_ids for k, m in modules.items()}
    test_items = [svc.items[i] for m in modules.values() for i in m.test_ids]
    t_test = scoring.check_all(svc, test_items, scoring.teacher_answers(svc, test_items, "examiner", module_of,
                                                                        node="diagnose:test"))
    s_test = scoring.check_all(svc, test_items, scoring.student_answers(svc, test_items))
    test_teacher, _ = scoring.module_scores(test_ids, t_test)
    test_before, _ = scoring.module_scores(test_ids, s_test)
    test_teacher["overall"], test_before["overall"] = (
        scoring.mean(list(t_test.values())),
        scoring.mean(list(s_test.values())),
    )
    return modules, prior, {"modules": modules, "test_teacher": test_teacher, "test_before": test_before}


def observe_student(state: LearnerState, svc: Services, modules: dict[str, Module]) -> Observation:
    """The student's gate scores now (one observation for Eq. 3)."""
    gate_items = [svc.items[i] for m in modules.values() for i in m.gate_ids]
    s_scores = scoring.check_all(svc, gate_items, scoring.student_answers(svc, gate_items))
    scores, counts = scoring.module_scores({k: m.gate_ids for k, m in modules.items()}, s_scores)
    return Observation(checkpoint=state.student.path if state.student else "initial", source="diagnose",
                       cycle=state.cycle, round=state.total_rounds, trained=list(state.trained), scores=scores,
                       counts=counts, level_scores={k: scoring.level_scores(m.gate_ids, m.item_levels, s_scores)
                                                    for k, m in modules.items()})


def ioa_targets(state: LearnerState, modules: dict[str, Module], deficient: list[str], limited: list[str],
                sev: dict[str, float], edges: list, th) -> tuple[list[str], dict[str, float], list[str]]:
    """Eq. 5: the most severe deficient modules, closed under their deficient prerequisites (targets, severity,
    caveats). The no_identifier ablation replaces this step (baselines/ablations.py)."""
    targets, caveats = ped.select_targets(deficient, limited, sev, edges, th.target_fraction)
    return targets, sev, caveats


def trace_diagnosis(state: LearnerState, svc: Services, modules, teacher, scores, gaps, deficient, limited, sev,
                    targets, edges, caveats, gone=()) -> None:
    th = svc.cfg.thresholds
    for k in sorted(modules):
        svc.trace.emit("module_diagnosis", node="diagnose", cycle=state.cycle, module=k, name=modules[k].name,
                       teacher_score=teacher[k], student_score=scores.get(k, 0.0), gap=round(gaps[k], 6),
                       tau_gap=th.tau_gap, deficient=k in deficient, teacher_limited=k in limited,
                       given_up_twice=k in gone,
                       teacher_floor=th.teacher_floor, severity=round(sev[k], 6), target=k in targets,
                       fallbacks=modules[k].fallbacks)
    for e in edges:
        svc.trace.emit("edge", node="diagnose", cycle=state.cycle, src=e.src, dst=e.dst, prior=e.prior,
                       measured=e.measured, n_obs=e.n_obs, strength=round(e.strength, 6), tau_dep=th.tau_dep,
                       kept=e.kept, source=e.source, broken_cycle=e.broken_cycle)
    svc.trace.emit("targets", node="diagnose", cycle=state.cycle, targets=targets, deficient=deficient,
                   teacher_limited=limited, target_fraction=th.target_fraction, caveats=caveats)


def diagnose(state: LearnerState, svc: Services, targeting=ioa_targets) -> dict:
    """The Identifier node: modules (first time), scores, gaps, edges, severity, targets."""
    th = svc.cfg.thresholds
    first = not state.modules
    svc.progress(f"diagnose: cycle {state.cycle}{' (building modules)' if first else ''}")
    if first:
        modules, prior, update = first_diagnosis(svc)
    else:
        modules = {k: m.model_copy(deep=True) for k, m in state.modules.items()}
        prior = {(e.src, e.dst): e.prior for e in state.edges}
        update = {"modules": modules}
    obs = observe_student(state, svc, modules)
    observations = state.observations + [obs]
    teacher = {k: m.teacher_score or 0.0 for k, m in modules.items()}
    gaps, deficient, limited = ped.classify(teacher, obs.scores, th)
    gone = ped.retired(state.decisions)
    teachable = [k for k in deficient if k not in gone]  # §1.6: given up in two cycles, not targeted again
    edges = ped.estimate_edges(sorted(modules), prior, observations, teacher, th)
    targets, sev, caveats = targeting(
        state, modules, teachable, limited, ped.severity(gaps, edges, th.alpha), edges, th
    )
    if not teachable:
        caveats.append(
            f"cycle {state.cycle}: no module is deficient and teachable"
            + (f" (teacher-limited: {', '.join(limited)})" if limited else "")
            + (f" (given up twice: {', '.join(gone)})" if gone else "")
        )
    if first:
        update["first_deficient"] = deficient
        update["known"] = ped.known_at_start(teacher, obs.scores, th)
    trace_diagnosis(state, svc, modules, teacher, obs.scores, gaps, deficient, limited, sev, targets, edges, caveats,
                    gone)
    return {**update, "observations": observations, "gap": gaps, "deficient": deficient, "severity": sev,
            "targets": targets, "caveats": sorted(set(state.caveats) | set(caveats)), "edges": edges,
            "phase": "diagnosed", "usage": svc.usage()}
