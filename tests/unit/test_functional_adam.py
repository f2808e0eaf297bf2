"""The zoo's Adam (``xaibench.models.adam.FunctionalAdam``) gives torch.optim.Adam's weights bit for bit, without
importing ``torch._dynamo`` (about 2 CPU-s per fresh process: every cold sweep and joblib/submitit worker)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import xaibench.models.training as training
from xaibench.models.adam import FunctionalAdam
from xaibench.registry import DATASETS, MODELS
from xaibench.engine.stages import build_dataset

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


def test_training_a_zoo_model_does_not_import_torch_dynamo():
    """In a fresh process: torch.optim.Adam would import torch._dynamo at construction (~2 CPU-s)."""
    script = textwrap.dedent("""
        import sys
        import torch
        from xaibench.engine.stages import build_dataset
        from xaibench.models.training import train_classifier
        from xaibench.registry import DATASETS, MODELS
        spec = MODELS.create("mlp", {"epochs": 2, "hidden": [4]})
        data = build_dataset(DATASETS.create("synthetic_tabular", {"n_samples": 70}), 0)
        module = train_classifier(spec.build(data), data.train, spec, seed=0)
        print(sorted(name for name in sys.modules if name.startswith("torch._dynamo")))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
