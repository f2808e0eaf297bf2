"""Registries and configs agree in both directions; unknown names and bad parameters are clear UserErrors."""
from dataclasses import dataclass

import pytest
import yaml

from xaibench.config.paths import conf_dir, group_options
from xaibench.errors import UserError
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS, Registry

AXES = {"model": MODELS, "dataset": DATASETS, "method": EXPLAINERS}


@pytest.mark.parametrize("group", sorted(AXES))
def test_every_config_is_registered_and_every_name_has_a_config(group):
    registry = AXES[group]
    options = group_options(group)
    assert [o for o in options if "/" not in o] == registry.names()
    for option in options:
        data = yaml.safe_load((conf_dir() / group / f"{option}.yaml").read_text())
        # a subfolder option (method=variant/gradient) is a registered name with other parameters
        assert data["name"] == option if "/" not in option else data["name"] in registry.names()
        params = {k: v for k, v in data.items() if k != "name"}
        registry.create(data["name"], params)  # every config instantiates with its own parameters


def test_every_metric_in_a_suite_is_registered_and_full_has_them_all():
    suites = {name: yaml.safe_load((conf_dir() / "metrics" / f"{name}.yaml").read_text()) or {}
              for name in group_options("metrics")}
    for suite, metrics in suites.items():
        for metric, params in metrics.items():
            assert metric in METRICS, f"suite {suite} names unregistered metric {metric}"
            METRICS.get(metric).check_params(params or {})
    if "full" in suites:
        assert sorted(suites["full"]) == METRICS.names()


def test_unknown_name_lists_valid_names():
    with pytest.raises(UserError, match=r"unknown model 'resnet'; valid: .*cnn.*mlp"):
        MODELS.get("resnet")


def test_parameters_are_type_checked():
    with pytest.raises(UserError, match="parameter 'n_steps' must be int"):
        EXPLAINERS.create("integrated_gradients", {"n_steps": "many"})
    with pytest.raises(UserError, match="unknown parameter"):
        EXPLAINERS.create("integrated_gradients", {"n_stepz": 3})
    assert EXPLAINERS.create("integrated_gradients", {"internal_batch_size": None}).internal_batch_size is None
    assert MODELS.create("mlp", {"hidden": [4, 4], "lr": 1}).hidden == (4, 4)  # lists -> tuples, int -> float


def test_duplicate_names_fail_at_registration():
    registry = Registry("thing")

    @registry.register("a")
    @dataclass(frozen=True)
    class A:
        pass

    with pytest.raises(RuntimeError, match="duplicate thing name 'a'"):
        @registry.register("a")
        @dataclass(frozen=True)
        class B:
            pass
