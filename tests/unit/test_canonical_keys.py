"""Stage keys hash method and metric parameters with their defaults filled in (``xaibench/engine/canonical.py``).

``+metrics.complexity={}`` and a suite's spelled-out ``complexity: {abs: ..., normalise: ...}`` (its registered
defaults) used to be two score stages computed twice; a method section without its default parameters was a
second explanation stage with other random draws. Shipped configs spell out every default, so their keys (and
the seeds derived from them) are unchanged.
"""
from __future__ import annotations

from pathlib import Path

import yaml

import xaibench
from xaibench.config.paths import conf_dir
from xaibench.engine.canonical import resolved_method, resolved_metric
from xaibench.engine.cell import CellSpec
from xaibench.engine.keys import canonical_json
from xaibench.registry import METRICS


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_every_shipped_method_config_and_metric_suite_resolves_to_itself():
    """So no key or seed of a shipped config moves: stores and the CI baseline stay valid."""
    for path in sorted((conf_dir() / "method").rglob("*.yaml")):
        section = {k: v for k, v in _yaml(path).items() if k != "label"}
        assert canonical_json(resolved_method(section)) == canonical_json(section), path.name
    for path in sorted((conf_dir() / "metrics").glob("*.yaml")):
        for name, params in _yaml(path).items():
            assert canonical_json(resolved_metric(name, params or {})) == canonical_json(params or {}), (path, name)


def test_the_default_spelled_out_or_left_out_gives_one_stage_key_and_other_values_another():
    ig = _yaml(conf_dir() / "method" / "integrated_gradients.yaml")
    spelled = METRICS.get("complexity")
    full = {**spelled.defaults, **spelled.call_defaults}
    short = CellSpec(model={"name": "mlp"}, dataset={"name": "iris"}, method={"name": "integrated_gradients"},
                     metrics={"complexity": {}})
    written = CellSpec(model={"name": "mlp"}, dataset={"name": "iris"}, method=ig, metrics={"complexity": full})
    other = CellSpec(model={"name": "mlp"}, dataset={"name": "iris"}, method={**ig, "n_steps": 8},
                     metrics={"complexity": {**full, "normalise": not full["normalise"]}})
    for versioned in (True, False):  # the stage's key and the seed identity its draws derive from
        assert short.explanation_key("m", versioned=versioned) == written.explanation_key("m", versioned=versioned)
        assert other.explanation_key("m", versioned=versioned) != written.explanation_key("m", versioned=versioned)
    assert short.score_key("e", "complexity") == written.score_key("e", "complexity")
    assert other.score_key("e", "complexity") != written.score_key("e", "complexity")
    assert short.key != written.key  # the cell key hashes the sections as written (found without the registries)


def test_a_metric_added_with_its_defaults_reuses_the_suites_score_stage(workdir, monkeypatch):
    """``+metrics.complexity={}`` after ``metrics=sparsity`` (whose complexity spells out the defaults): a new cell,
    but no new score stage, and the same values."""
    monkeypatch.setenv("XAIBENCH_CACHE", str(workdir / "cache"))
    cell = ["model=logreg", "dataset=iris", "method=saliency", "n_samples=4"]
    first = xaibench.run([*cell, "metrics=sparsity"])
    scores = workdir / "results" / "store"
    before = sorted(scores.rglob("scores/**/*.artefact"))
    second = xaibench.run([*cell, "metrics=default", "~metrics.faithfulness_correlation", "~metrics.max_sensitivity",
                           "+metrics.complexity={}"])
    assert sorted(scores.rglob("scores/**/*.artefact")) == before and len(before) == 3
    assert set(second["cell_key"]) != set(first["cell_key"])
    for metric in ("complexity", "sparseness"):
        assert list(second.loc[second["metric"] == metric, "value"]) == list(first.loc[first["metric"] == metric,
                                                                                        "value"])


def test_a_method_without_its_default_parameters_explains_once_and_is_one_competitor(workdir, monkeypatch):
    """``~method.n_steps`` leaves integrated gradients at its default 32 steps: the same explanation stage (same
    draws, no new artefact), and rows name the same method parameters, so the summary sees one competitor."""
    monkeypatch.setenv("XAIBENCH_CACHE", str(workdir / "cache"))
    cell = ["model=logreg", "dataset=iris", "method=integrated_gradients", "n_samples=4", "metrics=sparsity"]
    first = xaibench.run(cell)
    store = workdir / "results" / "store"
    before = sorted(store.rglob("explanations/**/*.artefact")) + sorted(store.rglob("scores/**/*.artefact"))
    second = xaibench.run([*cell, "~method.n_steps"])
    after = sorted(store.rglob("explanations/**/*.artefact")) + sorted(store.rglob("scores/**/*.artefact"))
    assert after == before and set(second["cell_key"]) != set(first["cell_key"])
    for column in ("method_params", "explanation_key", "value", "params"):
        assert list(second[column]) == list(first[column]), column


def test_parameters_unused_on_the_modality_keep_the_default_key_and_draws():
    """Occlusion explains a table one feature at a time and the perturbation methods group nothing on tables or
    tokens: ``window``/``stride``/``patch_size`` written there are the default's key and seed (a default config
    keeps the key it always had), and still make their own experiment on images."""
    from xaibench.types import Modality

    def key(method, modality, versioned=True):
        cell = CellSpec(model={"name": "mlp"}, dataset={"name": "d"}, method=method, metrics={})
        return cell.explanation_key("m", versioned=versioned, modality=modality)

    occlusion = _yaml(conf_dir() / "method" / "occlusion.yaml")
    moved = {**occlusion, "window": 4, "stride": 3}
    for versioned in (True, False):
        assert key(moved, Modality.TABULAR, versioned) == key(occlusion, Modality.TABULAR, versioned) \
            == key(occlusion, None, versioned)
        assert key(moved, Modality.IMAGE, versioned) != key(occlusion, Modality.IMAGE, versioned)
    for name in ("kernel_shap", "lime", "feature_ablation"):
        method = _yaml(conf_dir() / "method" / f"{name}.yaml")
        patched = {**method, "patch_size": 5}
        for modality in (Modality.TABULAR, Modality.TEXT):
            assert key(patched, modality) == key(method, modality) == key(method, None), (name, modality)
        assert key(patched, Modality.TIME_SERIES) != key(method, Modality.TIME_SERIES), name


def test_occlusion_window_on_a_table_is_the_default_experiment_and_the_rows_say_it_is_unused(workdir, monkeypatch):
    """``method.window=4`` on iris: no new explanation or score stage, the same values, and the same
    ``method_params``, which leave window/stride out and name them in ``unused_params`` (one competitor)."""
    import json

    monkeypatch.setenv("XAIBENCH_CACHE", str(workdir / "cache"))
    cell = ["model=logreg", "dataset=iris", "method=occlusion", "n_samples=4", "metrics=sparsity"]
    first = xaibench.run(cell)
    store = workdir / "results" / "store"
    before = sorted(store.rglob("explanations/**/*.artefact")) + sorted(store.rglob("scores/**/*.artefact"))
    second = xaibench.run([*cell, "method.window=4", "method.stride=3"])
    after = sorted(store.rglob("explanations/**/*.artefact")) + sorted(store.rglob("scores/**/*.artefact"))
    assert after == before and set(second["cell_key"]) != set(first["cell_key"])
    for column in ("method_params", "explanation_key", "value", "params"):
        assert list(second[column]) == list(first[column]), column
    params = json.loads(first["method_params"].iloc[0])
    assert params["unused_params"] == ["stride", "window"] and "window" not in params and "stride" not in params


def test_the_api_draws_the_same_for_a_parameter_unused_on_the_modality(capsys):
    """``xaibench.explain(..., method="kernel_shap", patch_size=3)`` on a table: one feature per column whatever
    the patch size, so the same draws and attributions as the default (the seed came from the explainer's repr),
    and one warning line says the parameter had no effect (a sweep names it in ``unused_params``)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.randn(3, 5)
    default = xaibench.explain(net, x, method="kernel_shap", n_samples=16)
    assert "no effect" not in capsys.readouterr().err
    patched = xaibench.explain(net, x, method="kernel_shap", n_samples=16, patch_size=3)
    assert torch.equal(default, patched)
    assert capsys.readouterr().err == ("xaibench: warning: kernel_shap's patch_size has no effect on tabular inputs: "
                                       "explained as with the default\n")
