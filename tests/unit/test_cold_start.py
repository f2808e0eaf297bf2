"""What a fresh process pays before computing: no ``torch._dynamo``/``torch._inductor`` import (~2 CPU-s each time).

The zoo's Adam (``xaibench.models.adam.FunctionalAdam``) gives torch.optim.Adam's weights bit for bit, and a cell's
deterministic-kernel switch sets what ``torch.use_deterministic_algorithms(True, warn_only=True)`` sets; neither
imports torch's compiler stack, which every cold sweep, joblib/submitit worker and subprocess test paid again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import xaibench.models.training as training
from xaibench.engine.datasets import build_dataset
from xaibench.explainers.counterfactual.wachter import WachterExplainer, cosine_annealed_lrs, margin_hinge
from xaibench.metrics import testing
from xaibench.models.adam import FunctionalAdam
from xaibench.registry import DATASETS, EXPLAINERS, MODELS

ROOT = Path(__file__).resolve().parents[2]


def _network() -> nn.Module:
    """Conv + batch norm + linear head ``(N, 1, 8, 8) -> (N, 4)``, and a layer outside the graph (grad stays None)."""
    torch.manual_seed(3)
    net = nn.Module()
    net.body = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    net.unused = nn.Linear(2, 2)
    net.forward = net.body.forward
    return net


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_functional_adam_matches_torch_adam_bit_for_bit(weight_decay):
    reference, ours = _network(), _network()
    torch_adam = torch.optim.Adam(reference.parameters(), lr=0.03, weight_decay=weight_decay)
    our_adam = FunctionalAdam(ours.parameters(), lr=0.03, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(0)
    for _ in range(25):
        x = torch.randn(5, 1, 8, 8, generator=generator)
        y = torch.randint(0, 4, (5,), generator=generator)
        for net, optimiser in ((reference, torch_adam), (ours, our_adam)):
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimiser.step()
    for (name, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(reference.body[0].weight, _network().body[0].weight)  # it did train
    for theirs_param, our_param in zip(reference.parameters(), ours.parameters()):  # same per-parameter state
        theirs, mine = torch_adam.state.get(theirs_param), our_adam.state.get(our_param)
        assert (theirs is None) == (mine is None)  # the unused layer has none in either
        if theirs is not None:
            assert set(theirs) == set(mine)
            assert all(torch.equal(theirs[k], mine[k]) and theirs[k].dtype == mine[k].dtype for k in theirs)


@pytest.mark.parametrize(("model", "dataset", "model_params", "data_params"), [
    ("mlp", "synthetic_tabular", {"epochs": 3, "hidden": [8], "weight_decay": 0.01}, {"n_samples": 130}),
    ("cnn", "synthetic_image", {"epochs": 2, "channels": [4]}, {"n_samples": 60, "image_size": 16}),
])
def test_zoo_training_gives_torch_adams_weights(monkeypatch, model, dataset, model_params, data_params):
    spec = MODELS.create(model, model_params)
    data = build_dataset(DATASETS.create(dataset, data_params), 0)

    def trained() -> nn.Module:
        torch.manual_seed(0)
        return training.train_classifier(spec.build(data), data.train, spec, seed=0)

    ours = trained()
    monkeypatch.setattr(training, "FunctionalAdam",
                        lambda params, lr, weight_decay: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    reference = trained()
    for (name, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("n_steps", [1, 2, 7, 200])
def test_cosine_annealed_lrs_are_torchs_scheduler_lrs_bit_for_bit(n_steps):
    """What ``CosineAnnealingLR(Adam, T_max=n_steps)`` sets ``lr`` to before each of the ``n_steps`` steps."""
    param = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.Adam([param], lr=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, n_steps)
    torch_lrs = []
    for _ in range(n_steps):
        torch_lrs.append(optimiser.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        optimiser.step()
        schedule.step()
    assert cosine_annealed_lrs(0.05, n_steps) == torch_lrs
    assert len(set(torch_lrs)) == n_steps  # the schedule does anneal


def _wachter_with_torch_adam(self, model, x, start, contrast, lam):
    """``WachterExplainer._optimise`` as it was with ``torch.optim.Adam`` and ``CosineAnnealingLR`` (the reference)."""
    z = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=self.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, self.n_steps)
    with torch.enable_grad():
        for _ in range(self.n_steps):
            optimiser.zero_grad(set_to_none=True)
            loss = lam * margin_hinge(model(z), contrast, self.confidence) + self._distance(z, x)
            loss.sum().backward()
            optimiser.step()
            schedule.step()
    return z.detach()


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_wachter_counterfactuals_are_torch_adams_bit_for_bit(monkeypatch, distance):
    """Several lambda rounds on a small MLP: counterfactuals, validity and lambdas equal the torch.optim ones."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.randn(6, 5)
    explainer = EXPLAINERS.create("wachter", {"n_steps": 15, "n_lambdas": 4, "lambda_init": 0.05,
                                              "distance": distance})
    ours = explainer.explain(model, x, model(x).argmax(1))
    monkeypatch.setattr(WachterExplainer, "_optimise", _wachter_with_torch_adam)
    reference = explainer.explain(model, x, model(x).argmax(1))
    assert torch.equal(ours.counterfactuals, reference.counterfactuals)
    assert torch.equal(ours.attributions, reference.attributions)
    for name in ("valid", "lambda", "distance"):
        assert np.array_equal(np.asarray(ours.extras[name]), np.asarray(reference.extras[name])), name
    assert len(set(np.asarray(ours.extras["lambda"]).tolist())) > 1  # some samples needed more than one round


def test_metric_tests_train_with_torch_adams_weights(monkeypatch):
    """``xaibench.metrics.testing.train`` (the metric tests' tiny models) steps FunctionalAdam: torch.optim's weights."""
    def untrained() -> nn.Module:
        torch.manual_seed(1)
        return testing.tiny_cnn(n_classes=2)

    x, y, _ = testing.bar_images(12)
    ours = testing.train(untrained(), x, y, steps=20)
    monkeypatch.setattr(testing, "FunctionalAdam", lambda params, lr: torch.optim.Adam(params, lr=lr))
    reference = testing.train(untrained(), x, y, steps=20)
    for (name, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(ours[0].weight, untrained()[0].weight)  # it did train


def _last_line_of(script: str) -> str:
    """Run ``script`` in a fresh interpreter (this checkout on its path); the last line it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TORCHINDUCTOR_DETERMINISTIC", None)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def _compiler_modules_after(script: str) -> list[str]:
    """The ``torch._dynamo``/``torch._inductor`` modules a fresh interpreter has loaded after ``script``."""
    listing = "print(sorted(n for n in sys.modules if n.startswith(('torch._dynamo', 'torch._inductor'))))"
    return eval(_last_line_of(textwrap.dedent(script) + "\n" + listing))  # noqa: S307 - a list literal printed by our own script


def test_training_a_zoo_model_does_not_import_torch_dynamo():
    """torch.optim.Adam imports torch._dynamo at construction (~2 CPU-s per fresh process)."""
    assert _compiler_modules_after("""
        import sys
        from xaibench.engine.datasets import build_dataset
        from xaibench.models.training import train_classifier
        from xaibench.registry import DATASETS, MODELS
        spec = MODELS.create("mlp", {"epochs": 2, "hidden": [4]})
        data = build_dataset(DATASETS.create("synthetic_tabular", {"n_samples": 70}), 0)
        module = train_classifier(spec.build(data), data.train, spec, seed=0)
    """) == []


def test_computing_a_cell_does_not_import_torchs_compiler():
    """A whole cell (train, explain, score) in a fresh process: torch.use_deterministic_algorithms imported
    torch._inductor (and torch._dynamo), ~1.6 CPU-s. The method is wachter, an explainer that runs Adam itself
    (torch.optim.Adam imported torch._dynamo, ~2 CPU-s)."""
    assert _compiler_modules_after("""
        import sys, tempfile, torch
        from xaibench.engine.cell import CellSpec
        from xaibench.engine.runner import run_cell
        from xaibench.engine.store import Store
        cell = CellSpec(model={"name": "mlp", "epochs": 2, "hidden": [4]},
                        dataset={"name": "synthetic_tabular", "n_samples": 70},
                        method={"name": "wachter", "n_steps": 5, "n_lambdas": 2}, seed=0,
                        metrics={"sparseness": {}}, n_samples=4)
        result = run_cell(cell, Store(tempfile.mkdtemp()))
        assert not result.cached and (result.rows["status"] == "ok").all(), result.rows["status"]
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    """) == []


def test_deterministic_kernels_sets_what_use_deterministic_algorithms_sets(monkeypatch):
    """Eager flags on and warn-only; inductor's flag for compiled code on, now or when its config is imported."""
    import torch._inductor.config as inductor_config

    from xaibench.engine.runner import deterministic_kernels

    monkeypatch.setattr(inductor_config, "deterministic", False)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(False)
        deterministic_kernels()
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert inductor_config.deterministic is True  # the config is loaded here: set on it
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    # not loaded yet (a fresh worker): the environment variable the config reads when it is first imported
    assert _last_line_of("""
        from xaibench.engine.runner import deterministic_kernels
        deterministic_kernels()
        import torch._inductor.config as inductor_config
        print(inductor_config.deterministic)
    """) == "True"


def test_comparing_tables_whose_values_all_agree_does_not_import_scipy_stats(tmp_path):
    """``xaibench compare`` (the CI verdict) on the committed baseline against a copy of it: no value differs, so the
    signed-rank test never runs and scipy.stats (~1 CPU-s) stays unimported."""
    baseline = ROOT / "results" / "baselines" / "ci" / "table.parquet"
    current = tmp_path / "current.parquet"  # a copy: the same file is refused as CURRENT
    current.write_bytes(baseline.read_bytes())
    line = _last_line_of(f"""
        import atexit, runpy, sys
        atexit.register(lambda: print(sorted(n for n in sys.modules if n.startswith("scipy.stats"))))
        verdict = {str(tmp_path / "verdict.json")!r}
        sys.argv = ["xaibench", "compare", {str(baseline)!r}, {str(current)!r}, "--json", verdict]
        runpy.run_module("xaibench", run_name="__main__")
    """)
    assert line == "[]"
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] == "pass"
