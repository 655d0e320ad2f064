"""Reports on a stored run: every number comes from the scoring module (``judges``), so the
report, the TUI and ``clinsim score`` agree. Part of the composition layer (it reads the store
and uses judges' public scoring API)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from scenarios import Criterion
from simulator.prices import PriceTable
from simulator.schemas import Verdict
from simulator.scoring import (
    Estimate,
    aggregate,
    axis_scores,
    episode_passed,
    group_aggregate,
    paired_difference,
    pass_hat_k,
)
from simulator.store import EpisodeRow, RunInfo

SEED = 0  # bootstrap seed: reports are reproducible


def _criteria(row: EpisodeRow) -> list[Criterion]:
    return [
        Criterion.model_construct(
            id=c["id"],
            criterion=c["id"],
            points=c["points"],
            axis=c["axis"],
            critical=c["critical"],
            tags=[],
            fact_ids=[],
        )
        for c in row.rubric
    ]


def _verdicts(row: EpisodeRow) -> list[Verdict]:
    result = row.result_obj()
    return [] if result is None else list(result.verdicts)


def critical_failures(row: EpisodeRow, verdicts: Sequence[Verdict]) -> list[str]:
    """Critical criteria this episode got wrong: a critical positive one not met, or a
    critical negative one met."""
    by_id = {v.criterion_id: v for v in verdicts}
    out = []
    for c in row.rubric:
        v = by_id.get(c["id"])
        if not c["critical"] or v is None or v.status == "unscored":
            continue
        if (v.status == "met") != (c["points"] > 0):
            out.append(c["id"])
    return out


def _est(items: list[tuple[str, float | None]]) -> dict[str, dict[str, Any]]:
    return {str(k): e.to_dict() for k, e in group_aggregate(items, seed=SEED).items()}


def build_report(
    info: RunInfo, rows: Sequence[EpisodeRow], prices: PriceTable | None = None
) -> dict[str, Any]:
    """Everything a report shows, as plain data (``--format json`` prints it)."""
    done = [r for r in rows if r.status == "done"]
    failed = [r for r in rows if r.status == "failed"]
    verdicts = {r.key: _verdicts(r) for r in done}
    overall = aggregate([r.score for r in done], seed=SEED)
    axis_items: list[tuple[str, float | None]] = []
    for r in done:
        for axis, value in axis_scores(verdicts[r.key], _criteria(r)).items():
            axis_items.append((axis, value))
    crit = [
        {
            "key": r.key,
            "scenario_id": r.scenario_id,
            "persona_id": r.persona_id,
            "clinician": r.clinician,
            "criteria": fails,
        }
        for r in done
        if (fails := critical_failures(r, verdicts[r.key]))
    ]
    critical_known = [r for r in done if r.critical_pass is not None]
    pass_k: dict[str, dict[str, float | None]] = {}
    for clin in sorted({r.clinician for r in done}):
        trials: dict[str, list[bool | None]] = defaultdict(list)
        for r in done:
            if r.clinician == clin:
                trials[f"{r.scenario_id}|{r.persona_id}"].append(
                    episode_passed(r.score, r.critical_pass)
                )
        most = max((len(t) for t in trials.values()), default=0)
        pass_k[clin] = {str(k): _r(pass_hat_k(trials, k)) for k in range(1, most + 1)}
    comparisons = []
    clinicians = sorted({r.clinician for r in rows})
    for other in clinicians[1:]:
        a = {r.pair_key: r.score for r in done if r.clinician == clinicians[0]}
        b = {r.pair_key: r.score for r in done if r.clinician == other}
        comparisons.append(
            {"a": clinicians[0], "b": other, **paired_difference(a, b, seed=SEED).to_dict()}
        )
    return {
        "run": info.name,
        "created_at": info.created_at,
        "config": info.manifest.get("config", {}),
        "versions": info.manifest.get("versions", {}),
        "planned": info.planned,
        "episodes": len(rows),
        "scored": overall.n,
        "failed": len(failed),
        "missing": max(0, info.planned - len(rows)),
        "score": overall.mean,
        "ci": [overall.low, overall.high],
        "failures_by_role": dict(Counter(r.failure_role or "unknown" for r in failed)),
        "failures": [
            {
                "key": r.key,
                "role": r.failure_role,
                "kind": r.failure_kind,
                "message": r.failure_message,
                "attempts": r.attempts,
            }
            for r in failed
        ],
        "unscored_verdicts": sum(r.unscored for r in done),
        "by_clinician": _est([(r.clinician, r.score) for r in done]),
        "by_dimension": _est([(r.dimension, r.score) for r in done]),
        "by_family": _est([(r.family, r.score) for r in done]),
        "by_persona": _est([(r.persona_id, r.score) for r in done]),
        "by_language": _est([(r.language, r.score) for r in done]),
        "by_axis": _est(axis_items),
        "critical": {
            "evaluated": len(critical_known),
            "passed": sum(1 for r in critical_known if r.critical_pass),
        },
        "critical_failures": crit,
        "pass_k": pass_k,
        "comparisons": comparisons,
        "judge_directed": [
            {"key": r.key, "turns": r.judge_directed_turns} for r in rows if r.judge_directed_turns
        ],
        "cost": cost_by_role(rows, prices),
        "scores": [r.score for r in done if r.score is not None],
    }


def compare_runs(
    a_info: RunInfo, a_rows: Sequence[EpisodeRow], b_info: RunInfo, b_rows: Sequence[EpisodeRow]
) -> dict[str, Any]:
    """Paired differences (this run minus the other) on the episodes both runs scored:
    matched by (clinician, scenario, persona, trial) when the runs share clinician labels, else
    by (scenario, persona, trial)."""
    a_done = [r for r in a_rows if r.status == "done"]
    b_done = [r for r in b_rows if r.status == "done"]
    a_clin, b_clin = {r.clinician for r in a_rows}, {r.clinician for r in b_rows}
    same = a_clin == b_clin
    if not same and (len(a_clin) > 1 or len(b_clin) > 1):
        raise ValueError(
            f"runs {a_info.name!r} and {b_info.name!r} have different clinician models and one "
            "has several; compare runs of one clinician each, or the same clinicians"
        )

    def key(r: EpisodeRow) -> str:
        return r.key if same else r.pair_key

    out: dict[str, Any] = {
        "a": a_info.name,
        "b": b_info.name,
        "matched_on": "key" if same else "scenario|persona|trial",
        "overall": paired_difference(
            {key(r): r.score for r in a_done}, {key(r): r.score for r in b_done}, seed=SEED
        ).to_dict(),
        "by_family": {},
    }
    for fam in sorted({r.family for r in a_done} | {r.family for r in b_done}):
        out["by_family"][fam] = paired_difference(
            {key(r): r.score for r in a_done if r.family == fam},
            {key(r): r.score for r in b_done if r.family == fam},
            seed=SEED,
        ).to_dict()
    return out


def cost_by_role(rows: Sequence[EpisodeRow], prices: PriceTable | None) -> dict[str, Any]:
    """Calls, tokens and dollars per role and model; ``cost`` is None (unpriced) when any model
    of that role has no price."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        for role, u in r.usage.items():
            parts = u.get("members") or [u]
            for part in parts:
                k = (role, str(part.get("spec")))
                a = acc.setdefault(k, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
                for f in ("calls", "prompt_tokens", "completion_tokens"):
                    a[f] += int(part.get(f, 0))
    out: dict[str, Any] = {}
    for (role, spec), a in sorted(acc.items()):
        cost = (
            prices.cost(spec, a["prompt_tokens"], a["completion_tokens"])
            if prices is not None
            else None
        )
        out.setdefault(role, []).append(
            {"spec": spec, **a, "cost_usd": None if cost is None else round(cost, 6)}
        )
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# ---------------------------------------------------------------------- exports


CSV_FIELDS = [
    "run", "key", "clinician", "scenario_id", "persona_id", "trial", "seed", "dimension",
    "family", "language", "status", "failure_role", "failure_kind", "score", "critical_pass",
    "unscored", "judge_directed_turns", "duration_s", "attempts",
]  # fmt: skip


def to_csv(rows: Sequence[EpisodeRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = {f: getattr(r, f) for f in CSV_FIELDS}
        d["judge_directed_turns"] = " ".join(map(str, r.judge_directed_turns))
        w.writerow(d)
    return buf.getvalue()


def to_jsonl(rows: Sequence[EpisodeRow]) -> str:
    lines = []
    for r in rows:
        d = {f: getattr(r, f) for f in CSV_FIELDS}
        d["failure_message"] = r.failure_message
        d["result"] = json.loads(r.result) if r.result else None
        lines.append(json.dumps(d, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def to_healthbench(rows: Sequence[EpisodeRow], criteria_text: dict[str, dict[str, str]]) -> str:
    """HealthBench-format JSONL: the conversation up to the clinician's last turn as
    ``prompt``, that turn as ``completion``, the rubric with HealthBench tags, and the grades."""
    lines = []
    for r in rows:
        result = r.result_obj()
        if result is None:
            continue
        turns = result.transcript.turns
        last = max((i for i, t in enumerate(turns) if t.role == "clinician"), default=None)
        if last is None:
            continue
        role = {"patient": "user", "clinician": "assistant"}
        texts = criteria_text.get(r.scenario_id, {})
        by_id = {v.criterion_id: v for v in result.verdicts}
        rubrics = [
            {
                "criterion": texts.get(c["id"], c["id"]),
                "points": c["points"],
                "tags": [f"axis:{c['axis']}", f"cluster:{c['id']}"]
                + (["critical"] if c["critical"] else []),
            }
            for c in r.rubric
        ]
        grades = [
            {
                "criterion": texts.get(c["id"], c["id"]),
                "criteria_met": None
                if (v := by_id.get(c["id"])) is None or v.status == "unscored"
                else v.status == "met",
                "explanation": v.explanation if v is not None else "",
            }
            for c in r.rubric
        ]
        lines.append(
            json.dumps(
                {
                    "prompt_id": f"{r.run}:{r.key}",
                    "prompt": [{"role": role[t.role], "content": t.content} for t in turns[:last]],
                    "completion": [{"role": "assistant", "content": turns[last].content}],
                    "rubrics": rubrics,
                    "example_tags": [f"theme:{r.family}", f"dimension:{r.dimension}"],
                    "grades": grades,
                    "score": r.score,
                },
                ensure_ascii=False,
            )
        )
    return "".join(line + "\n" for line in lines)


def estimate_text(e: dict[str, Any] | Estimate) -> str:
    d = e.to_dict() if isinstance(e, Estimate) else e
    if d.get("mean") is None:
        return "—"
    if d.get("low") is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"
