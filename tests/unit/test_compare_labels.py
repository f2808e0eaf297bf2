"""``xaibench compare`` names a model or dataset by its display name (``model.label=...``, the rows' ``model_label``
/ ``dataset_label``) wherever people read it -- the report, the terminal's lines, the GitHub annotations, the JUnit
failure texts -- as ``xaibench report`` does, while JUnit testcases keep the registry names: CI systems track a
testcase across runs by its name, and a renamed label must not read as tests removed and added."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_compare import BASE, table
from xaibench import cli

UNIT = "torch_module/npz_arrays/saliency/m"  # the registry names of the unit whose scores get worse
# its JUnit classname and name: registry names, with the setting that differs from conf/config.yaml's (10 samples)
CLASS = "torch_module/npz_arrays [n_samples=10]"
CASE = f"{CLASS}/saliency/m"


def sweep_table(model_label: str, dataset_label: str, *, shift: float = 0.0, revision: str = "w1") -> pd.DataFrame:
    """A sweep's table of an own model on own data (as a sweep writes it: each row stamped with the display names,
    the registry name where no label was set): saliency and the random control on metric ``m``, saliency's scores
    moved by ``shift``; plus an ``mlp`` with no label, unchanged."""
    own = table({("saliency", "m"): list(BASE + shift), ("random", "m"): list(np.full(10, 0.1))},
                model="torch_module", dataset="npz_arrays", model_label=model_label, dataset_label=dataset_label,
                model_revision=revision)
    builtin = table({("saliency", "m"): list(BASE)}, model_label="mlp", dataset_label="toy")
    return pd.concat([own, builtin], ignore_index=True)


def compare(capsys, tmp_path: Path, baseline: pd.DataFrame, current: pd.DataFrame, *flags: str) -> dict:
    """``xaibench compare --quiet --github-annotations`` with every output: exit code, stdout, report, JSON, JUnit."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    baseline.to_parquet(tmp_path / "base.parquet", index=False)
    current.to_parquet(tmp_path / "cur.parquet", index=False)
    out = {name: tmp_path / f"v.{name}" for name in ("md", "json", "xml")}
    with pytest.raises(SystemExit) as done:
        cli.main(["compare", str(tmp_path / "base.parquet"), str(tmp_path / "cur.parquet"), "--quiet",
                  "--github-annotations", "--report", str(out["md"]), "--json", str(out["json"]), "--junit",
                  str(out["xml"]), *flags])
    return {"code": done.value.code, "stdout": capsys.readouterr().out, "md": out["md"].read_text(),
            "json": json.loads(out["json"].read_text()), "junit": ET.parse(out["xml"]).getroot()}


def cases_of(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}


def test_a_labelled_model_and_dataset_are_named_by_their_labels_where_people_read_them(capsys, tmp_path):
    said = compare(capsys, tmp_path, sweep_table("My net", "My data"), sweep_table("My net", "My data", shift=-0.2))
    assert said["code"] == 1
    line = "degraded: My net/My data/saliency/m ↑: worse: mean 0.55 -> 0.35"
    assert any(text.startswith(f"  {line}") for text in said["stdout"].splitlines())  # --quiet's failing findings
    assert "::error title=xaibench compare%3A degraded%3A My net/My data/saliency/m ↑::" + line in said["stdout"]
    assert "| ❌ degraded | My net | My data | saliency | m ↑ | 0.55 | 0.35 |" in said["md"]
    (degraded,) = [f for f in said["json"]["findings"] if f["kind"] == "degraded"]
    assert (degraded["unit"]["model"], degraded["unit"]["dataset"]) == ("torch_module", "npz_arrays")  # identity
    assert degraded["unit"]["labels"] == {"model": "My net", "dataset": "My data", "method": "saliency", "metric": "m"}
    # a unit whose model and dataset have no label (the rows record the registry name) is named as before
    assert "torch_module" not in said["md"] and "npz_arrays" not in said["md"]
    junit = cases_of(said["junit"])
    failure = junit[CLASS, CASE].find("failure")
    assert failure.get("message").startswith(line) and failure.text.startswith(line)
    assert ("mlp/toy [n_samples=10]", "mlp/toy [n_samples=10]/saliency/m") in junit
    suite = next(s for s in said["junit"] if s.get("name") == CLASS)
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {"model_label": "My net",
                                                                               "dataset_label": "My data"}
    assert [p for s in said["junit"] if s.get("name") == "mlp/toy [n_samples=10]" for p in s.iter("property")] == []


def test_renaming_a_label_keeps_every_junit_testcase_and_names_the_unit_as_it_is_now(capsys, tmp_path):
    """JUnit's ``classname`` + ``name`` stay the registry names whatever the label, so GitLab's and Jenkins' history
    of each testcase (failed N times, newly failing, fixed) goes on; the texts name the unit by its current label."""
    baseline = sweep_table("My net", "My data")
    before = compare(capsys, tmp_path / "a", baseline, sweep_table("My net", "My data", shift=-0.2))
    after = compare(capsys, tmp_path / "b", baseline, sweep_table("Our net", "Our data", shift=-0.2))
    unlabelled = compare(capsys, tmp_path / "c", baseline.assign(model_label=baseline["model"],
                                                                 dataset_label=baseline["dataset"]),
                         sweep_table("torch_module", "npz_arrays", shift=-0.2))
    assert set(cases_of(before["junit"])) == set(cases_of(after["junit"])) == set(cases_of(unlabelled["junit"]))
    failure = cases_of(after["junit"])[CLASS, CASE].find("failure").get("message")
    assert failure.startswith("degraded: Our net/Our data/saliency/m ↑: worse")  # the current table's label
    assert cases_of(unlabelled["junit"])[CLASS, CASE].find("failure").get("message").startswith(
        f"degraded: {UNIT} ↑: worse")  # no label: the registry names, as before


def test_a_changed_model_is_named_by_its_label_and_registry_name(capsys, tmp_path):
    """The ``revision`` line says which model changed in the user's words and in the registry's (the JSON's and the
    JUnit testcase's ``model torch_module``); its prefix names the model by its label, as every other line does
    (paper21: it read ``revision: torch_module: model My net (torch_module) ...`` beside ``degraded: My net/...``)."""
    said = compare(capsys, tmp_path, sweep_table("My net", "My data"),
                   sweep_table("My net", "My data", shift=-0.2, revision="w2"))
    (revision,) = [f for f in said["json"]["findings"] if f["kind"] == "revision"]
    assert revision["message"].startswith("model My net (torch_module) weights changed (weights w1 -> w2)")
    assert f"  revision: My net: {revision['message']}" in said["stdout"].splitlines()
    assert (revision["unit"]["model"], revision["unit"]["labels"]) == ("torch_module", {"model": "My net"})
    assert "| ℹ️ | My net |  |  |  | model My net (torch_module) weights" in said["md"]  # the report's row too
    assert "torch_module:" not in said["stdout"]
    assert ("xaibench compare", "revision: model torch_module") in cases_of(said["junit"])
    failure = cases_of(said["junit"])[CLASS, CASE].find("failure").text
    assert f"what may explain it: revision: My net: {revision['message']}" in failure


def test_the_runs_n_samples_reads_apart_from_the_datasets_own_n_samples_parameter(capsys, tmp_path):
    # synthetic_tabular has a dataset parameter n_samples (rows generated) and the run a setting n_samples (samples
    # explained): a label read "synthetic_tabular (n_samples=1000, n_samples=8)". Now the run's settings follow in
    # brackets, as the JUnit testcases name them.
    def sweep(shift: float) -> pd.DataFrame:
        return pd.concat([table({("saliency", "m"): list(BASE + shift)}, dataset="synthetic_tabular",
                                dataset_label="synthetic_tabular", dataset_params=json.dumps({"n_samples": rows}),
                                n_samples=explained)
                          for rows in (500, 1000) for explained in (8, 10)], ignore_index=True)

    said = compare(capsys, tmp_path, sweep(0.0), sweep(-0.2))
    labels = sorted(f["unit"]["labels"]["dataset"] for f in said["json"]["findings"] if f["kind"] == "degraded")
    assert labels == ["synthetic_tabular (n_samples=1000) [n_samples=10]", "synthetic_tabular (n_samples=1000) "
                      "[n_samples=8]", "synthetic_tabular (n_samples=500) [n_samples=10]",
                      "synthetic_tabular (n_samples=500) [n_samples=8]"]
    assert "| synthetic_tabular (n_samples=1000) [n_samples=8] |" in said["md"]
    assert "mlp/synthetic_tabular (n_samples=1000) [n_samples=8]/saliency/m" in said["stdout"]
