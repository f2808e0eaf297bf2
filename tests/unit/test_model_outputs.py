"""What a user's model returns (``model.outputs``: logits or probabilities), checked on the first batch; models that
return probabilities (a final softmax, scikit-learn's ``predict_proba``) are explained through ``log p``, so every
``explain_output`` means what it says (``xaibench/models/outputs.py``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaibench
from xaibench.engine.datasets import build_dataset
from xaibench.engine.runner import _check_explain_output
from xaibench.errors import UserError
from xaibench.explainers.output import explained_output
from xaibench.models.outputs import are_probabilities
from xaibench.registry import DATASETS, MODELS

N_FEATURES = 6


class LogitNet(nn.Module):
    """A fixed linear classifier on 6 features (weights from the seed); returns logits."""

    def __init__(self, k: int = 2, features: int = N_FEATURES) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.linear = nn.Linear(features, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * self.linear(x)


class SoftmaxNet(LogitNet):
    """The same classifier ending in a softmax: returns probabilities."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).softmax(-1)


class LogSoftmaxNet(LogitNet):
    """Ending in a log_softmax: log-probabilities, which are logits already (declared ``logits``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).log_softmax(-1)


HERE = __name__  # dotted targets for torch_module


@pytest.fixture(scope="module")
def tabular():
    return build_dataset(DATASETS.create("synthetic_tabular", {"n_samples": 60, "n_features": N_FEATURES}), 0)


def torch_module(cls: str, **params):
    return MODELS.create("torch_module", {"target": f"{HERE}.{cls}", "epochs": 1, **params})


def test_a_softmax_model_declared_as_logits_is_refused(tabular):
    with pytest.raises(UserError, match=r"forward returns probabilities .* set model.outputs=probabilities"):
        torch_module("SoftmaxNet").build(tabular)


def test_logits_declared_as_probabilities_are_refused(tabular):
    with pytest.raises(UserError, match=r"model.outputs=probabilities, but forward's rows are not probabilities"):
        torch_module("LogitNet", outputs="probabilities").build(tabular)
    with pytest.raises(UserError, match="model.outputs must be one of logits, probabilities, got 'proba'"):
        torch_module("LogitNet", outputs="proba").build(tabular)


def test_output_width_and_input_layout_are_checked_on_the_first_batch(tabular):
    with pytest.raises(UserError, match=r"forward must return class scores \(N, 2\), got \(8, 3\) .* 2 classes"):
        torch_module("LogitNet", kwargs={"k": 3}).build(tabular)
    with pytest.raises(UserError, match=r"got \(8, 1\) .*; a single binary logit z is the two-class logits \[0, z\]"):
        torch_module("LogitNet", kwargs={"k": 1}).build(tabular)
    with pytest.raises(UserError, match=r"forward fails on inputs of shape \(6,\) per sample: RuntimeError"):
        torch_module("LogitNet", kwargs={"features": 4}).build(tabular)


def test_a_declared_softmax_model_is_explained_exactly_as_its_logits(tabular):
    """log p are logits of p: every explain_output of the softmax model equals that of the logit model."""
    x = tabular.test.x
    soft = torch_module("SoftmaxNet", outputs="probabilities").build(tabular).eval()
    logits = LogitNet().eval()
    torch.testing.assert_close(soft(x).softmax(-1), logits(x).softmax(-1))
    log_soft = torch_module("LogSoftmaxNet").build(tabular).eval()  # accepted as logits
    for kind in ("log_odds", "log_softmax", "probability"):
        for model in (soft, log_soft):
            torch.testing.assert_close(explained_output(model, kind)(x), explained_output(logits, kind)(x),
                                       atol=1e-5, rtol=1e-4)
    p = logits(x).softmax(-1).double()
    torch.testing.assert_close(explained_output(soft, "log_odds")(x).double(), torch.log(p / (1 - p)), atol=1e-4,
                               rtol=1e-4)
    attributions = [xaibench.explain(model, x[:5], method="saliency", outputs=outputs)
                    for model, outputs in ((SoftmaxNet(), "probabilities"), (LogitNet(), "logits"))]
    torch.testing.assert_close(attributions[0], attributions[1], atol=1e-5, rtol=1e-4)


def test_the_api_refuses_an_undeclared_softmax_model(tabular):
    with pytest.raises(UserError, match=r"model: forward returns probabilities .* set outputs=probabilities"):
        xaibench.explain(SoftmaxNet(), tabular.test.x[:5], method="saliency")
    with pytest.raises(UserError, match="outputs probabilities, which have no logits"):
        xaibench.explain(SoftmaxNet(), tabular.test.x[:5], method="saliency", outputs="probabilities",
                         explain_output="logit")


def test_scikit_learn_probabilities_are_explained_as_probabilities(tabular):
    """explain_output=probability is predict_proba itself and log_odds is log(p / (1 - p)); before, both were
    computed as if the probabilities were logits (softmax(p), p_t - logsumexp(p_others))."""
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(tabular.train.x.numpy(), tabular.train.y.numpy())
    module = MODELS.create("sklearn_estimator").build(tabular)
    module.estimator = estimator
    x = tabular.test.x
    p = torch.as_tensor(estimator.predict_proba(x.numpy().astype(np.float64)))
    torch.testing.assert_close(explained_output(module, "probability")(x).double(), p, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(explained_output(module, "log_odds")(x).double(), torch.log(p / (1 - p)), atol=1e-4,
                               rtol=1e-4)
    assert are_probabilities(module(x).softmax(-1)) and not are_probabilities(module(x))
    assert MODELS.create("sklearn_estimator").source_revision() == "forward=log_predict_proba"  # new model keys
    with pytest.raises(UserError, match="sklearn_estimator outputs probabilities, which have no logits"):
        _check_explain_output(MODELS.create("sklearn_estimator"), "logit")
    _check_explain_output(MODELS.create("sklearn_estimator"), "log_odds")
