"""A sweep cell's stored DeepLIFT / DeepLIFT-SHAP / LRP maps explain the configured ``explain_output`` through the
declared output rules (``explainers/output_rules.py``), as a direct call and a metric's re-explanation do.

The engine wrapped the explained output in its forward counter (``ForwardCounter(ExplainedOutput(model))``), which
``split_output`` read as a logit model: the stored maps backpropagated plain gradients through the transform while
the stability metrics' re-explanations applied the rules, so those metrics compared two different maps.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.engine import revisions
from xaibench.engine.cell import CellSpec
from xaibench.engine.counting import ForwardCounter
from xaibench.engine.datasets import build_dataset
from xaibench.engine.runner import run_cell
from xaibench.engine.stages import explanation_seed, get_model
from xaibench.engine.store import Store
from xaibench.explainers.output import EXPLAIN_OUTPUTS, explained_output
from xaibench.explainers.output_rules import deeplift_multipliers, lrp_logit_relevance, split_output
from xaibench.metrics.quantus_adapter import make_explain_func
from xaibench.registry import DATASETS, EXPLAINERS, MODELS
from xaibench.types import Modality

N = 8
# Sensitivity of a map to noise of 1e-9: iris features (0.1-7.9) do not move in float32, so a re-explanation that
# computes what the stored map computed scores 0 (max_sensitivity divides by the stored map's norm).
NO_NOISE = {"max_sensitivity": {"nr_samples": 2, "lower_bound": 1e-9}}


def sweep_cell(tmp_path, model: str, method: str, kind: str, params: dict | None = None):
    """Run one real cell on iris; return its stored map ``(N, 4)``, targets, rows, inputs and trained module."""
    cell = CellSpec(model={"name": model}, dataset={"name": "iris"}, method={"name": method, **(params or {})},
                    metrics=NO_NOISE, n_samples=N, explain_output=kind, engine="quantus")
    store = Store(tmp_path)
    rows = run_cell(cell, store).rows
    assert set(rows["status"]) == {"ok"}, rows["message"].tolist()
    arrays, _ = store.get_arrays("explanations", rows["explanation_key"].iloc[0])
    dataset = build_dataset(DATASETS.create("iris", {}), cell.seed)
    trained = get_model(store, MODELS.create(model, {}), dataset, cell)  # the cell's own checkpoint
    x = dataset.test.head(N).x
    stored = torch.from_numpy(arrays["attributions"]).double()
    return stored, torch.from_numpy(arrays["targets"]).long(), rows, x, trained, cell, dataset


def explained(kind: str, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``T(z)`` ``(N,)`` in float64 from its definition (docs/meaning.md), independent of the suite's code."""
    z = z.double()
    log_p = torch.log_softmax(z, dim=1).gather(1, target[:, None]).squeeze(1)
    if kind == "log_odds":
        return log_p - torch.log1p(-log_p.exp())
    return log_p.exp() if kind == "probability" else log_p


@pytest.mark.parametrize("kind", ["log_odds", "probability"])
def test_a_sweeps_deeplift_map_of_a_linear_model_is_the_output_rules_closed_form(tmp_path, kind):
    """On softmax regression ``z = W x + b`` DeepLIFT from the zero baseline is ``x * (m @ W)``, ``m`` the output
    rule's multipliers of the logits, and it sums to ``T(z(x)) - T(z(0))`` exactly. The stored map was the plain
    gradient through ``T``, 0.05 away (its sum missed the change by up to 0.1)."""
    stored, target, _, x, trained, _, _ = sweep_cell(tmp_path, "logreg", "deeplift", kind)
    linear = next(m for m in trained.module.modules() if isinstance(m, nn.Linear))
    w, b = linear.weight.detach().double(), linear.bias.detach().double()
    z, z_ref = x.double() @ w.T + b, b.expand(len(x), -1)
    multipliers = deeplift_multipliers(kind, z, z_ref, target)
    torch.testing.assert_close(stored, x.double() * (multipliers @ w), rtol=1e-4, atol=1e-6)
    change = explained(kind, z, target) - explained(kind, z_ref, target)
    torch.testing.assert_close(stored.sum(1), change, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["log_odds", "probability"])
def test_a_sweeps_lrp_map_of_a_linear_model_is_the_output_rules_closed_form(tmp_path, kind):
    """LRP-0 through one linear layer gives input ``i`` the share ``x_i W_ki / z_k`` of each logit's relevance
    ``R_k`` (the bias keeps the rest): the map is ``x * ((R / z) @ W)`` with ``R`` the soft-min output rule's logit
    relevances, which sum to ``T(z)``. The stored map was captum's LRP through the transform's gradient, off by ~1."""
    stored, target, _, x, trained, _, _ = sweep_cell(tmp_path, "logreg", "lrp", kind)
    linear = next(m for m in trained.module.modules() if isinstance(m, nn.Linear))
    w, b = linear.weight.detach().double(), linear.bias.detach().double()
    z = x.double() @ w.T + b
    relevance = lrp_logit_relevance(kind, z, target)
    torch.testing.assert_close(relevance.sum(1), explained(kind, z, target), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(stored, x.double() * ((relevance / z) @ w), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap", "lrp"])
@pytest.mark.parametrize("kind", ["log_odds", "probability"])
def test_a_sweeps_map_equals_a_direct_call_and_the_metrics_re_explanation(tmp_path, method, kind):
    """On a ReLU MLP: the cell's stored map, the explainer called on ``explained_output(model, kind)``, and the
    re-explanation a stability metric makes (``make_explain_func``) are one map; max_sensitivity at a noise float32
    cannot represent on iris is then 0. It was 4.0-6.1 for LRP under log_odds, and NaN or 2e5-4e6 for every method
    under probability (the stored map, the plain gradient through a saturated softmax, was numerically zero next to
    the rule's re-explanation): the metric compared two different maps."""
    params = {"n_baselines": 4} if method == "deeplift_shap" else {}
    stored, target, rows, x, trained, cell, dataset = sweep_cell(tmp_path, "mlp", method, kind, params)
    explainer = EXPLAINERS.create(method, params)
    seed = explanation_seed(cell, trained, dataset.modality)
    re_explain = make_explain_func(explainer, Modality.TABULAR, tuple(x.shape[1:]), explain_output=kind,
                                   draw_seed=seed)
    again = torch.from_numpy(re_explain(trained.module, x.numpy()[:, None, :], target.numpy())).double()
    torch.testing.assert_close(again.reshape(stored.shape), stored, rtol=1e-5, atol=1e-6)
    if method != "deeplift_shap":  # its baselines are drawn from the cell's seed (the re-explanation draws so)
        direct = explainer.explain(explained_output(trained.module, kind), x, target).attributions.double()
        torch.testing.assert_close(stored, direct, rtol=1e-5, atol=1e-6)
    if method == "deeplift":  # summation-to-delta of the explained output, from its definition
        with torch.no_grad():
            z, z_ref = trained.module(x), trained.module(torch.zeros_like(x))
        change = explained(kind, z, target) - explained(kind, z_ref, target)
        torch.testing.assert_close(stored.sum(1), change, rtol=1e-4, atol=1e-5)
    sensitivity = rows.loc[rows["metric"] == "max_sensitivity", "value"].to_numpy()
    np.testing.assert_allclose(sensitivity, 0.0, atol=1e-5)


def test_forward_counter_under_the_transform_keeps_the_rule_and_counts_every_forward():
    """``explained_output(ForwardCounter(m))`` (the engine's order) exposes the transform to the rules and counts
    the forwards the rules make; the old order ``ForwardCounter(ExplainedOutput(m))`` is refused, not read as logits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    counter = ForwardCounter(model)
    logits, kind = split_output(explained_output(counter, "log_odds"))
    assert logits is counter and kind == "log_odds"
    x, target = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1])
    EXPLAINERS.create("lrp").explain(explained_output(counter, "log_odds"), x, target)
    # LRP: the logits for the output rule, then captum's two forwards (its output, its relevance pass): 3 x 5 rows
    assert (counter.calls, counter.rows) == (3, 15)
    with pytest.raises(TypeError, match="explained_output"):
        split_output(ForwardCounter(explained_output(model, "log_odds")))


def test_only_the_fixed_methods_and_outputs_change_their_keys(monkeypatch):
    """The fix's revision tags change the cell and explanation keys of deeplift / deeplift_shap / lrp under a
    non-logit output (and of deeplift on models that may hold ``nn.Softmax`` or ``nn.GELU``, of deeplift_shap on the
    latter; of the hooked methods on own models,
    whose functional nonlinearities are now checked and whose LRP now runs); every other method keeps its keys,
    so its stored cells stay valid, and the explanation seeds (the draws) stay as they were."""
    def keys(method: str, kind: str, model: str = "mlp") -> tuple[str, str, str]:
        cell = CellSpec(model={"name": model}, dataset={"name": "iris"}, method={"name": method},
                        metrics={"sparseness": {}}, explain_output=kind)
        return cell.key, cell.explanation_key("m"), cell.explanation_key("m", versioned=False)

    fixed = {(m, k) for m in ("deeplift", "deeplift_shap", "lrp") for k in EXPLAIN_OUTPUTS if k != "logit"}
    cases = [(m, k, model) for m in sorted(EXPLAINERS.names()) for k in EXPLAIN_OUTPUTS
             for model in ("mlp", "vit", "torch_module")]
    hooked = {"deeplift", "deeplift_shap", "guided_backprop", "lrp"}  # own models: functional nonlinearities, LRP
    rescaled = {"deeplift", "deeplift_shap"}  # vit's nn.GELU (and softmax per sample, deeplift)
    now = {case: keys(*case) for case in cases}
    monkeypatch.setattr(revisions, "REVISIONS", ())  # the keys as they were before the fixes
    before = {case: keys(*case) for case in cases}
    for (method, kind, model), (cell_key, explanation_key, seed_key) in now.items():
        changed = ((method, kind) in fixed or (method in rescaled and model in ("vit", "torch_module"))
                   or (method in hooked and model == "torch_module"))
        old_cell, old_explanation, old_seed = before[(method, kind, model)]
        assert (cell_key != old_cell) is changed, (method, kind, model)
        assert (explanation_key != old_explanation) is changed, (method, kind, model)
        assert seed_key == old_seed


class SoftmaxWeights(nn.Module):
    """Softmax weights over 5 slots (an ``nn.Softmax`` module, as in the zoo's attention), then a read-out: DeepLIFT
    has a rule for each step (the zoo's transformers, whose attention products it has none for, are not_applicable:
    ``tests/unit/test_byo_deeplift_mixing_ops.py``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scores, self.softmax, self.readout = nn.Linear(6, 5), nn.Softmax(dim=1), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.softmax(3.0 * self.scores(x)))


@pytest.mark.parametrize("kind", ["logit", "log_odds"])
def test_deeplift_on_softmax_models_does_not_depend_on_the_batch(kind):
    """captum's ``nn.Softmax`` rule subtracts the mean multiplier over the whole tensor, every sample of the batch
    included: the zoo's attention models' DeepLIFT maps moved by 8-45% of their largest value between
    ``batch_size=4`` (or 8) and 1, and so between the sweep's batches and a metric's re-explanation chunks. Such
    models are explained one sample at a time; a sample's map is then the same in any batch. Since byo24 an
    ``nn.Softmax`` inside the network is not_applicable (the rule does not sum to the output change either); one at
    the output (a probability model, seen through its log) is crossed by its gradient: the same in any batch."""
    from xaibench.engine.stages import explain_arrays
    from xaibench.errors import NotApplicable
    from xaibench.explainers.gradient.deeplift import deeplift
    from xaibench.models.outputs import LogProbabilities

    module = SoftmaxWeights().eval()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    with pytest.raises(NotApplicable, match=r"applies nn\.Softmax to activations before other layers"):
        explain_arrays(EXPLAINERS.create("deeplift"), module, x, None, modality=Modality.TABULAR, seed=0,
                       batch_size=4, explain_output=kind)
    head = LogProbabilities(nn.Sequential(module.scores, module.softmax)).eval()  # ends in the nn.Softmax
    maps = [explain_arrays(EXPLAINERS.create("deeplift"), head, x, None, modality=Modality.TABULAR, seed=0,
                           batch_size=size, explain_output=kind).attributions for size in (4, 1)]
    assert maps[0].abs().max() > 0.1
    torch.testing.assert_close(maps[0], maps[1], rtol=0, atol=0)
    target = module(x).argmax(1)
    batched = deeplift(module, "logit", x.clone().requires_grad_(True), torch.zeros_like(x), target, False)
    alone = torch.cat([deeplift(module, "logit", x[i : i + 1].clone().requires_grad_(True), torch.zeros_like(x[:1]),
                                target[i : i + 1], False) for i in range(4)])
    assert (batched - alone).abs().max() > 1e-3  # the rule does couple this model's batch
