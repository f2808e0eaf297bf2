"""``xaibench compare`` end to end on real tables from one tiny sweep (shared by the module).

The sweep: an MLP on the synthetic tabular set (ground-truth masks), saliency / integrated gradients / random,
scored with faithfulness, sparsity, stability and localisation metrics. The planted degradation is real: the
same sweep with saliency's attributions shuffled across features (explained, shuffled, scored by the suite).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import xaibench
from tests.conftest import REPO, cli_env
from xaibench import cli
from xaibench.explainers.gradient.saliency import SaliencyExplainer
from xaibench.results.collect import load_table
from xaibench.results.schema import SCHEMA_VERSION, oldest_comparable_version

# faithfulness_correlation keeps its default nr_runs=50: fewer runs make per-sample scores too noisy for 12 samples
# to show the shuffle's effect reliably (it still does, at p < 0.01).
pytestmark = pytest.mark.slow  # one tiny sweep, four times (see ``tables``), shared by the module

SWEEP = ["model=mlp", "dataset=synthetic_tabular", "method=saliency,integrated_gradients,random", "n_samples=12",
         "+metrics.pointing_game={}", "+metrics.attribution_localisation={}", "metrics.max_sensitivity.nr_samples=2"]


def _shuffled(explain):
    """Wrap an explain method: the same attributions, moved to other features by a fixed permutation."""
    permutation = torch.tensor([7, 9, 8, 5, 6, 0, 1, 2, 3, 4])  # moves every feature (10 tabular features)

    def explain_shuffled(self, model, x, target):
        explanation = explain(self, model, x, target)
        return dataclasses.replace(explanation, attributions=explanation.attributions[:, permutation])

    return explain_shuffled


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, str]:
    """Paths of: base, rerun (same config, fresh store), batch (explanation batch size 5 instead of 64: not in the
    key, moves values by ~1e-7), shuffled (saliency attributions shuffled)."""
    root = tmp_path_factory.mktemp("compare")
    paths = {}
    for name in ("base", "rerun", "batch", "shuffled"):
        with pytest.MonkeyPatch.context() as patch:
            if name == "shuffled":
                patch.setattr(SaliencyExplainer, "explain", _shuffled(SaliencyExplainer.explain))
            batch = ["batch_size=5"] if name == "batch" else []
            table = xaibench.run([*SWEEP, *batch, f"results_dir={root}/runs", f"store_dir={root}/store-{name}",
                                  f"sweep_id={name}"], multirun=True)
        assert (table["status"] != "error").all()
        paths[name] = str(root / f"{name}.parquet")
        table.to_parquet(paths[name], index=False)
    return paths


def compare(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``xaibench compare ARGS`` through the CLI entry point; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def doctored(path: str, out, change) -> str:
    frame = pd.read_parquet(path)
    frame = change(frame)
    frame.to_parquet(out, index=False)
    return str(out)


def verdict(path) -> dict:
    return json.loads(open(path).read())


def test_identical_rerun_passes_with_zero_differences(tables, capsys, tmp_path):
    code, out, _ = compare(capsys, tables["base"], tables["rerun"], "--json", tmp_path / "v.json")
    result = verdict(tmp_path / "v.json")
    assert code == 0 and result["verdict"] == "pass"
    assert result["findings"] == []
    assert result["counts"]["differing"] == 0 and result["counts"]["pairs"] == 3 * 5 * 12
    assert "0 differ at all" in out


def test_a_batch_size_change_differs_only_inside_the_strict_tolerance(tables, capsys, tmp_path):
    code, _, _ = compare(capsys, tables["base"], tables["batch"], "--policy", "strict", "--json", tmp_path / "v.json")
    result = verdict(tmp_path / "v.json")
    assert code == 0 and result["findings"] == []
    assert result["max_abs_diff"] < 1e-6  # measured here: a few values move, by up to ~3e-7


def test_cross_machine_noise_passes_by_default_and_strict_reports_it(tables, capsys, tmp_path):
    rng = np.random.default_rng(0)

    def noise(frame):
        return frame.assign(value=frame["value"] * (1 + 1e-3 * rng.uniform(-1, 1, len(frame))))

    noisy = doctored(tables["base"], tmp_path / "noisy.parquet", noise)
    code, _, _ = compare(capsys, tables["base"], noisy, "--json", tmp_path / "default.json")
    assert code == 0
    assert not [f for f in verdict(tmp_path / "default.json")["findings"] if f["fails"]]
    code, out, _ = compare(capsys, tables["base"], noisy, "--policy", "strict", "--json", tmp_path / "strict.json")
    changes = [f for f in verdict(tmp_path / "strict.json")["findings"] if f["kind"] in ("degraded", "improved")]
    assert code == 1
    assert len(changes) >= 10  # most of the 15 method x metric units move beyond 1e-6
    assert "elementwise" in out and "1e-06" in out


def test_shuffled_attributions_fail_and_the_report_names_method_metric_size_and_direction(tables, capsys, tmp_path):
    report = tmp_path / "report.md"
    code, out, _ = compare(capsys, tables["base"], tables["shuffled"], "--report", report, "--json",
                           tmp_path / "v.json")
    assert code == 1
    failing = [f for f in verdict(tmp_path / "v.json")["findings"] if f["fails"]]
    assert {f["unit"]["method"] for f in failing} == {"saliency"}
    assert {f["kind"] for f in failing} == {"degraded", "below_control"}
    below = {(f["unit"]["metric"], f["details"]["control"]) for f in failing if f["kind"] == "below_control"}
    assert below  # shuffled saliency no longer beats the random control somewhere: a real finding too
    failing = [f for f in failing if f["kind"] == "degraded"]
    metrics = {f["unit"]["metric"] for f in failing}
    assert {"faithfulness_correlation", "attribution_localisation"} <= metrics
    assert "sparseness" not in metrics  # Gini sparseness is permutation invariant: the shuffle cannot change it
    text = report.read_text()
    assert text in out  # the file is the report printed on stdout
    for finding in failing:
        change = finding["change"]
        assert change["direction"] == "worse" and change["delta"] < 0  # higher is better for these metrics
        line = next(line for line in text.splitlines() if f"| {finding['unit']['metric']} ↑ |" in line)
        assert "❌ degraded" in line and "| saliency |" in line and "| worse |" in line
        assert f"{change['delta']:+.4g}" in line and "wilcoxon p=" in line and "mean\\|b\\|" in line


def test_a_planted_improvement_passes_and_is_reported(tables, capsys, tmp_path):
    code, out, _ = compare(capsys, tables["shuffled"], tables["base"], "--json", tmp_path / "v.json")
    findings = verdict(tmp_path / "v.json")["findings"]
    assert code == 0
    improved = [f for f in findings if f["kind"] == "improved"]
    assert improved and {f["unit"]["method"] for f in improved} == {"saliency"}
    assert all(f["change"]["direction"] == "better" and not f["fails"] for f in improved)
    assert "ℹ️ improved" in out
    assert compare(capsys, tables["shuffled"], tables["base"], "--strict-changes")[0] == 1


def test_a_missing_cell_fails_and_a_new_method_passes(tables, capsys, tmp_path):
    without_random = doctored(tables["base"], tmp_path / "fewer.parquet", lambda f: f[f["method"] != "random"])
    code, out, _ = compare(capsys, tables["base"], without_random, "--json", tmp_path / "missing.json")
    missing = verdict(tmp_path / "missing.json")["findings"]
    assert code == 1 and {(f["kind"], f["unit"]["method"], f["fails"]) for f in missing} == {("missing", "random", True)}
    assert "### Missing" in out
    assert compare(capsys, tables["base"], without_random, "--allow-missing")[0] == 0
    code, out, _ = compare(capsys, without_random, tables["base"], "--json", tmp_path / "new.json")
    new = verdict(tmp_path / "new.json")["findings"]
    assert code == 0 and {(f["kind"], f["unit"]["method"], f["fails"]) for f in new} == {("new", "random", False)}
    assert len(new) == 5 and "### New" in out  # one per metric


def test_a_sample_turning_nan_fails_with_its_message(tables, capsys, tmp_path):
    def nan_one(frame):
        row = (frame["method"] == "integrated_gradients") & (frame["metric"] == "sparseness")
        index = frame.index[row][0]
        frame.loc[index, ["value", "status", "message"]] = [np.nan, "nan", "all-zero attribution"]
        return frame

    code, out, _ = compare(capsys, tables["base"], doctored(tables["base"], tmp_path / "nan.parquet", nan_one))
    assert code == 1 and "1 sample(s) ok -> nan: all-zero attribution" in out


@pytest.mark.parametrize("case", ["older schema", "not a table", "missing file", "text file"])
def test_usage_errors_print_one_line_and_exit_2(case, tables, capsys, tmp_path):
    bad = tmp_path / "bad.parquet"
    if case == "older schema":
        old = oldest_comparable_version() - 1  # newer ones differ by measurement columns only: compared
        doctored(tables["base"], bad, lambda f: f.assign(schema_version=old))
        expected = f"has results schema version {old}, this xaibench reads version {SCHEMA_VERSION}"
    elif case == "not a table":
        pd.DataFrame({"accuracy": [0.9]}).to_parquet(bad)
        expected = "is not an xaibench results table (lacks columns:"
    elif case == "missing file":
        expected = "baseline table"
    else:
        bad.write_text("model,value\nmlp,1\n")
        expected = "is unreadable: not a valid Parquet file"
    code, out, err = compare(capsys, bad, tables["base"])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err and str(bad) in err
    assert "Traceback" not in err


def test_update_baseline_writes_table_and_provenance_and_compare_never_does(tables, capsys, tmp_path):
    baseline = tmp_path / "baselines" / "ci"
    code, out, _ = compare(capsys, baseline, tables["base"], "--update-baseline", "--command", "xaibench -m ...")
    assert code == 0 and "baseline updated" in out
    provenance = json.loads((baseline / "table.provenance.json").read_text())
    assert provenance["command"] == "xaibench -m ..." and provenance["rows"] == len(pd.read_parquet(tables["base"]))
    assert {"versions", "machine", "created_at", "git_sha"} <= set(provenance)
    before = (baseline / "table.parquet").read_bytes()
    assert compare(capsys, baseline, tables["shuffled"])[0] == 1
    assert (baseline / "table.parquet").read_bytes() == before
    pd.testing.assert_frame_equal(pd.read_parquet(baseline / "table.parquet"), pd.read_parquet(tables["base"]))


def test_the_ci_regression_script_fails_on_a_doctored_table(tables, tmp_path):
    """What .ci/run runs after the tests, pointed at a doctored current table instead of a fresh sweep.

    The failing run is called from another folder with ``XAIBENCH_CI_*`` paths relative to it (the script works
    from the repository root; it used to resolve them there)."""
    env = cli_env(PYTHON=sys.executable, PYTHONPATH=os.environ.get("PYTHONPATH", str(REPO)),
                  XAIBENCH_CI_BASELINE=tables["base"], XAIBENCH_CI_OUT=str(tmp_path))
    script = [str(REPO / "scripts" / "ci_regression.sh")]
    passing = subprocess.run(["bash", *script], env={**env, "XAIBENCH_CI_CURRENT": tables["rerun"]},
                             capture_output=True, text=True, timeout=120)
    assert passing.returncode == 0, passing.stderr
    (tmp_path / "shuffled.parquet").write_bytes(open(tables["shuffled"], "rb").read())
    (tmp_path / "policy.yaml").write_text("metrics:\n  faithfulness_correlation: {atol: 5.0}\n")
    relative = {"XAIBENCH_CI_CURRENT": "shuffled.parquet", "XAIBENCH_CI_POLICY": "policy.yaml",
                "XAIBENCH_CI_OUT": "out"}
    failing = subprocess.run(["bash", *script], env={**env, **relative}, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert failing.returncode == 1, failing.stderr
    assert "xaibench compare: FAIL" in failing.stdout
    assert "| saliency |" in (tmp_path / "out" / "compare.md").read_text()
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["verdict"] == "fail" and result["policy"]["name"] == str(tmp_path / "policy.yaml")
    degraded = {f["unit"]["metric"] for f in result["findings"] if f["kind"] == "degraded"}
    assert "attribution_localisation" in degraded and "faithfulness_correlation" not in degraded  # the policy applied


# --- review fixes (issue 9 as a user guarding a method in CI) ----------------------------------------------------

def _raise_in_explain(self, model, x, target):
    raise RuntimeError("saliency exploded (planted)")


@pytest.fixture(scope="module")
def broken(tables, tmp_path_factory) -> dict[str, str]:
    """A real erroring cell: saliency alone (fresh store) whose explain raises; and the base table's saliency rows.

    The error rows carry the metrics' params as configured (``{}`` for pointing_game, ``subset_size: 0.25``), the
    baseline's ok rows the resolved ones (adapter settings added, 0.25 -> 2 features)."""
    root = tmp_path_factory.mktemp("broken")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SaliencyExplainer, "explain", _raise_in_explain)
        table = xaibench.run([*SWEEP, "method=saliency", f"results_dir={root}/runs", f"store_dir={root}/store",
                              "sweep_id=broken"], multirun=True)
    assert (table["status"] == "error").all() and (table["sample_id"] == "").all()
    paths = {"broken": str(root / "broken.parquet"), "base": str(root / "base-saliency.parquet")}
    table.to_parquet(paths["broken"], index=False)
    doctored(tables["base"], paths["base"], lambda f: f[f["method"] == "saliency"])
    return paths


def test_an_erroring_cell_is_a_status_change_with_its_message_on_every_metric(broken, capsys, tmp_path):
    code, out, _ = compare(capsys, broken["base"], broken["broken"], "--json", tmp_path / "v.json")
    findings = verdict(tmp_path / "v.json")["findings"]
    assert code == 1
    # one ok -> error finding per metric of the suite, none reported as missing + new (params as configured vs
    # params as resolved must not make them different experiments)
    assert {(f["kind"], f["fails"]) for f in findings} == {("status", True)}
    metrics = set(pd.read_parquet(broken["base"])["metric"])
    assert {f["unit"]["metric"] for f in findings} == metrics and len(findings) == len(metrics) == 5
    assert all(f["details"]["before"] == "ok" and f["details"]["after"] == "error" for f in findings)
    assert all("saliency exploded (planted)" in f["details"]["message"] for f in findings)
    assert out.count("ok -> error: RuntimeError: saliency exploded (planted)") == 5
    assert "### Missing" not in out and "### New" not in out
    assert "cannot become a baseline" in out and verdict(tmp_path / "v.json")["update_command"] is None


def test_chunk_halvings_after_out_of_memory_do_not_make_another_experiment(tables, capsys, tmp_path):
    """A GPU box that halved a metric's chunk after CUDA OOM records ``chunk_backoffs`` in the rows' params; the
    scores are the same measurement (the chunk size is not in the key), so they are compared, not missing/new."""
    def halved(frame):
        rows = frame["metric"] == "faithfulness_correlation"
        params = [json.dumps({**json.loads(p), "chunk_backoffs": 2}, sort_keys=True) for p in frame.loc[rows, "params"]]
        frame.loc[rows, "params"] = params
        return frame

    gpu = doctored(tables["base"], tmp_path / "gpu.parquet", halved)
    code, out, _ = compare(capsys, tables["base"], gpu, "--json", tmp_path / "v.json")
    result = verdict(tmp_path / "v.json")
    assert code == 0 and result["findings"] == []
    assert result["counts"]["pairs"] == 3 * 5 * 12 and result["counts"]["units"] == 15


def test_a_baseline_compare_could_not_read_is_never_written(tables, capsys, tmp_path):
    target = tmp_path / "baseline.txt"  # it was written (as Parquet), then refused by every compare
    code, out, err = compare(capsys, target, tables["base"], "--update-baseline")
    assert code == 2 and "must be a .parquet or .csv file or a folder" in err
    assert not target.exists() and not (tmp_path / "baseline.provenance.json").exists()


def test_an_empty_baseline_is_a_usage_error_not_a_pass(tables, capsys, tmp_path):
    empty = doctored(tables["base"], tmp_path / "empty.parquet", lambda f: f.iloc[:0])
    code, out, err = compare(capsys, empty, tables["base"])
    assert code == 2 and out == ""
    assert f"baseline {empty} has no rows" in err and len(err.strip().splitlines()) == 1


def test_a_failing_report_says_how_to_accept_an_intended_change(tables, capsys, tmp_path):
    code, out, _ = compare(capsys, tables["base"], tables["shuffled"], "--json", tmp_path / "v.json")
    assert code == 1
    update = f"xaibench compare {tables['base']} {tables['shuffled']} --update-baseline"
    assert update in out and verdict(tmp_path / "v.json")["update_command"].startswith(update)
    code, out, _ = compare(capsys, tables["base"], tables["rerun"])
    assert code == 0 and "--update-baseline" not in out  # nothing to accept


def test_a_misspelt_policy_entry_is_named_not_silently_ignored(tables, capsys, tmp_path):
    policy = tmp_path / "tolerances.yaml"
    policy.write_text("families:\n  localization: {atol: 0.05}\nmetrics:\n  max_sensitivty: {rtol: 0.5}\n"
                      "  sparseness: {atol: 0.02}\n")
    code, out, err = compare(capsys, tables["base"], tables["rerun"], "--policy", policy, "--json", tmp_path / "v.json")
    assert code == 0  # a warning: a shared policy may name metrics this sweep does not have
    assert verdict(tmp_path / "v.json")["unused_overrides"] == ["families.localization", "metrics.max_sensitivty"]
    warning = "sets families.localization, metrics.max_sensitivty, which names no metric family or metric"
    warnings = [line for line in err.splitlines() if "its config was not checked" not in line]  # a copied table
    assert warning in err and len(warnings) == 1 and warning in out


@pytest.fixture(scope="module")
def killed(tables, tmp_path_factory) -> str:
    """A real sweep folder whose run was killed on its third cell (2 of 3 cells; the sweep did not finish)."""
    from xaibench.engine import runner

    root = tmp_path_factory.mktemp("killed")
    store = os.path.join(os.path.dirname(tables["base"]), "store-base")  # its models: only the 2 cells are computed
    from tests.conftest import interrupted_on_call

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "_compute", interrupted_on_call(runner._compute, 3))
        with pytest.raises(KeyboardInterrupt):
            xaibench.run([*SWEEP, "n_samples=6", f"results_dir={root}", f"store_dir={store}", "sweep_id=killed"],
                         multirun=True)
    return str(root / "killed")


def test_an_unfinished_sweep_is_never_a_baseline_and_is_named_as_current(killed, capsys, tmp_path):
    note = "2 of 3 cells; the sweep did not finish"
    target = tmp_path / "baselines" / "mine"
    code, out, err = compare(capsys, target, killed, "--update-baseline")
    assert code == 2 and f"current {killed} is partial ({note})" in err and not target.exists()
    partial = tmp_path / "partial.parquet"
    load_table(killed).to_parquet(partial, index=False)  # the mark travels in the Parquet metadata
    code, out, err = compare(capsys, partial, killed)
    assert code == 2 and f"baseline {partial} is partial ({note})" in err and out == ""
    unmarked, complete = pd.read_parquet(partial), tmp_path / "complete.parquet"  # the same rows, unmarked
    unmarked.attrs = {}
    unmarked.to_parquet(complete, index=False)
    code, out, err = compare(capsys, complete, killed, "--json", tmp_path / "v.json")
    assert code == 0 and f"current {killed} is partial ({note})" in out + err
    assert verdict(tmp_path / "v.json")["current"]["partial"] == note


def test_a_large_change_confined_to_few_samples_passes_as_noise_but_is_reported(tables, capsys, tmp_path):
    """4 of 12 samples broken by 0.5: the mean drops 0.167, far beyond the size bound, but 4 samples moving one way
    (one-sided p = 1/16) cannot be told from samples that flip on another machine. It is named, with why, and
    passes; 5 would fail (tests/unit/test_compare.py)."""
    def broken_on_four(frame):
        rows = frame.index[(frame["method"] == "saliency") & (frame["metric"] == "faithfulness_correlation")][:4]
        frame.loc[rows, "value"] -= 0.5
        return frame

    four = doctored(tables["base"], tmp_path / "four.parquet", broken_on_four)
    code, out, _ = compare(capsys, tables["base"], four, "--json", tmp_path / "v.json")
    assert code == 0
    (finding,) = [f for f in verdict(tmp_path / "v.json")["findings"] if f["kind"] == "unconfirmed"]
    change = finding["change"]
    assert not finding["fails"] and finding["unit"]["method"] == "saliency"
    assert finding["unit"]["metric"] == "faithfulness_correlation" and change["direction"] == "worse"
    assert change["delta"] == pytest.approx(-0.5 * 4 / 12) and change["n_differing"] == 4
    assert change["p_value"] >= 0.05 and abs(change["delta"]) > change["tolerance"]
    assert "ℹ️ not significant" in out and "4 of 12 samples beyond tolerance, all worse: beyond the size bound" in \
        finding["message"] and "at least 5 samples must move one way" in finding["message"]
    assert "--update-baseline" not in out  # passed as noise: nothing to accept
    assert compare(capsys, tables["base"], four, "--strict-changes")[0] == 1


def test_a_baseline_records_the_commit_of_the_repository_it_was_refreshed_in(tables, capsys, tmp_path, monkeypatch):
    """A user's baseline names *their* commit (``git_sha`` is xaibench's source tree, "unknown" when installed)."""
    repo = tmp_path / "mine"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=u", "-c", "user.email=u@x"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "net.py").write_text("# my model\n")
    subprocess.run([*git, "add", "net.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "my model"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.chdir(repo)
    assert compare(capsys, "baselines/mine", tables["base"], "--update-baseline")[0] == 0
    provenance = json.loads((repo / "baselines" / "mine" / "table.provenance.json").read_text())
    assert provenance["repository"] == {"path": str(repo), "git_sha": head, "dirty": False}
    # the report's heading names that commit; its "git <sha>" was xaibench's source tree, not found in the user's repo
    code, out, _ = compare(capsys, "baselines/mine", tables["base"], "--json", tmp_path / "v.json")
    assert code == 0 and f"Baseline `baselines/mine` (repository {head[:10]}, xaibench " in out and " (git " not in out
    assert verdict(tmp_path / "v.json")["baseline"]["repository_sha"] == head


def test_swapped_baseline_and_current_are_refused_not_read_backwards(tables, capsys, tmp_path):
    """Given the wrong way round, a degraded run (shuffled saliency) read as an improvement and passed."""
    baseline = tmp_path / "baselines" / "ci"
    assert compare(capsys, baseline, tables["base"], "--update-baseline")[0] == 0
    code, out, err = compare(capsys, tables["shuffled"], baseline)
    assert code == 2 and out == ""
    assert "the arguments look swapped; the order is xaibench compare BASELINE CURRENT" in err
    assert len(err.strip().splitlines()) == 1
    assert compare(capsys, baseline, tables["shuffled"])[0] == 1  # the right order fails as it should
    other = tmp_path / "baselines" / "other"
    assert compare(capsys, other, tables["base"], "--update-baseline")[0] == 0
    assert compare(capsys, baseline, other)[0] == 0  # two baselines (both with provenance) still compare


def test_a_controls_drift_passes_but_a_method_falling_below_it_fails_on_real_scores(tables, capsys, tmp_path):
    """The random control's faithfulness moves when the model is retrained: that failed the build like a method's
    regression. On the sweep's real scores: random's values moved down by half of saliency's lead pass (reported as
    `control`, in the report and JSON); moved above saliency's own values, saliency fails `below_control`."""
    frame = pd.read_parquet(tables["base"])
    faith = frame[frame["metric"] == "faithfulness_correlation"].set_index(["method", "seed", "sample_id"])["value"]
    lead = faith["saliency"] - faith["random"]
    assert lead.mean() > 0.1  # the real precondition: saliency beats random on faithfulness here

    def move(values):
        def change(table):
            rows = (table["method"] == "random") & (table["metric"] == "faithfulness_correlation")
            keys = list(zip(table.loc[rows, "seed"], table.loc[rows, "sample_id"]))
            table.loc[rows, "value"] = values(np.array([faith["random"][k] for k in keys]),
                                              np.array([faith["saliency"][k] for k in keys]))
            return table
        return change

    drifted = doctored(tables["base"], tmp_path / "drift.parquet", move(lambda r, s: r - lead.mean() / 2))
    code, out, _ = compare(capsys, tables["base"], drifted, "--json", tmp_path / "drift.json")
    result = verdict(tmp_path / "drift.json")
    assert code == 0 and result["verdict"] == "pass" and result["counts"]["failing"] == 0
    assert [(f["kind"], f["unit"]["method"], f["details"]["direction"]) for f in result["findings"]] == [
        ("control", "random", "worse")]
    assert "ℹ️ control | mlp | synthetic_tabular | random | faithfulness_correlation ↑" in out
    assert compare(capsys, tables["base"], drifted, "--policy", "strict")[0] == 1  # strict gates controls

    above = doctored(tables["base"], tmp_path / "above.parquet", move(lambda r, s: s + 0.05))
    code, out, _ = compare(capsys, tables["base"], above, "--json", tmp_path / "above.json", "--quiet")
    result = verdict(tmp_path / "above.json")
    failing = [f for f in result["findings"] if f["fails"]]
    assert code == 1 and {(f["kind"], f["unit"]["method"]) for f in failing} >= {("below_control", "saliency")}
    assert {f["kind"] for f in failing} == {"below_control"}
    below = next(f for f in failing if f["unit"]["method"] == "saliency")
    assert below["details"]["control"] == "random" and below["change"]["current_mean"] == pytest.approx(-0.05)
    assert below["change"]["baseline_mean"] == pytest.approx(lead.mean())
    assert "  below_control: mlp/synthetic_tabular/saliency/faithfulness_correlation ↑: no longer beats the " \
           "control random" in out
    assert not [f for f in result["findings"] if f["kind"] == "rank" and "random" in f["message"]]


def test_controls_record_their_role_and_a_baseline_written_before_that_still_matches(tables, capsys, tmp_path):
    """The rows say which methods are controls (`Explainer.control`: "role": "control" in method_params), so a
    user's own control is one without a policy entry; a baseline written before rows recorded it is the same
    experiment (0 differences, no missing/new units)."""
    frame = pd.read_parquet(tables["base"])
    params = {m: json.loads(p) for m, p in zip(frame["method"], frame["method_params"])}
    assert params["random"] == {"positive": False, "role": "control"} and "role" not in params["saliency"]

    def without_role(text):
        return json.dumps({k: v for k, v in json.loads(text).items() if k != "role"}, sort_keys=True)

    older = doctored(tables["base"], tmp_path / "older.parquet",
                     lambda t: t.assign(method_params=t["method_params"].map(without_role)))
    code, _, _ = compare(capsys, older, tables["rerun"], "--json", tmp_path / "v.json")
    result = verdict(tmp_path / "v.json")
    assert code == 0 and result["findings"] == [] and result["counts"]["pairs"] == 3 * 5 * 12
    assert result["recorded_controls"] == ["random"]
