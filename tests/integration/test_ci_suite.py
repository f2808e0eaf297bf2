"""The CI regression suite (experiment=ci) and its committed baseline stay what docs/ci.md promises."""
from __future__ import annotations

import json
from functools import cache

import pandas as pd

from tests.conftest import REPO
from xaibench.config.paths import group_options
from xaibench.config.preflight import compose_job, expand_sweep
from xaibench.registry import DATASETS, EXPLAINERS
from xaibench.results.schema import SCHEMA_VERSION

BASELINE = REPO / "results" / "baselines" / "ci" / "table.parquet"
REGENERATE = "regenerate it: bash scripts/ci_regression.sh --update-baseline (docs/ci.md)"


@cache
def ci_jobs() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(job) for job in expand_sweep(["experiment=ci"], multirun=True))


@cache
def ci_cells() -> frozenset[tuple[str, str, str]]:
    cells = [compose_job(list(job)) for job in ci_jobs()]
    return frozenset((c.model.name, c.dataset.name, c.method.name) for c in cells)


def test_ci_sweep_runs_every_case_once_over_all_modalities_and_method_families():
    jobs = ci_jobs()
    assert sorted(job[0].removeprefix("ci_case=") for job in jobs) == group_options("ci_case")
    cells = ci_cells()
    assert len(cells) == len(jobs)  # no two cases run the same cell
    modalities = {str(DATASETS.get(dataset).modality) for _, dataset, _ in cells}
    assert modalities == {"tabular", "image", "time_series", "text"}
    families = {EXPLAINERS.get(method).__module__.split(".")[2] for _, _, method in cells}
    assert {"gradient", "perturbation", "attention", "counterfactual", "controls"} <= families


def test_committed_baseline_is_current_complete_and_has_provenance():
    table = pd.read_parquet(BASELINE)
    assert set(table["schema_version"]) == {SCHEMA_VERSION}, f"baseline schema is stale; {REGENERATE}"
    assert set(zip(table["model"], table["dataset"], table["method"])) == ci_cells(), \
        f"the baseline does not cover exactly the ci cases; {REGENERATE}"
    assert not (table["status"] == "error").any()
    scored = table[table["status"] == "ok"]
    assert {"faithfulness", "sparsity", "stability", "localisation", "counterfactual"} <= set(scored["family"])
    provenance = json.loads(BASELINE.with_name("table.provenance.json").read_text())
    assert provenance["rows"] == len(table)
    assert {"versions", "machine", "created_at", "git_sha", "command"} <= set(provenance)
