"""scikit-learn classifiers behind ``predict_proba``: for model-agnostic methods only (capability ``PROBA``).

Persistence choice: the fitted estimator is stored as ``pickle`` bytes (``save``/``load`` below). scikit-learn has
no weights-only format, and refitting on every load would make "load" silently cost a training run. The store
checksums each payload (corrupt bytes are a cache miss, retrained) and ``load`` checks the unpickled object is the
configured estimator class, fitted on the dataset's feature count, else the engine retrains. Unpickling runs code
from the store, so the store directory must be as trusted as the code itself: never point ``store_dir`` at files
from an untrusted source (the same rule scikit-learn gives for its own pickles).
"""
from __future__ import annotations

import inspect
import math
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.models.adapters._source import import_object
from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


class SklearnClassifier(nn.Module):
    """``forward(x (N, ...)) -> probabilities (N, K)`` through ``estimator.predict_proba`` on flattened inputs.

    Not differentiable (numpy inside). Classes missing from the training split get probability 0. The empty
    ``device_anchor`` parameter only lets code that asks ``next(model.parameters()).device`` find a device.
    """

    def __init__(self, estimator: Any, n_classes: int, n_features: int) -> None:
        super().__init__()
        self.estimator = estimator
        self.n_classes = n_classes
        self.n_features = n_features
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(x.shape[0], -1).cpu().numpy().astype(np.float64)
        proba = np.zeros((x.shape[0], self.n_classes))
        proba[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = self.estimator.predict_proba(flat)
        return torch.as_tensor(proba, dtype=torch.float32, device=x.device)


@MODELS.register("sklearn_estimator")
@dataclass(frozen=True)
class SklearnEstimator(ModelSpec):
    """Any scikit-learn-style classifier with ``predict_proba``, fitted in-suite on the flattened training split.

    ``random_state`` is set from the model seed when the estimator takes one and ``kwargs`` leave it unset, so
    fits are deterministic. ``epochs``/``lr``/``batch_size`` do not apply.

    Attributes:
        estimator: dotted path of the estimator class (``sklearn.ensemble.RandomForestClassifier``).
        kwargs: constructor keyword arguments.
    """

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    capabilities = frozenset({Capability.PROBA})
    estimator: str = "sklearn.ensemble.RandomForestClassifier"
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)

    def _estimator_class(self) -> type:
        cls = import_object(self.estimator, f"model {self.name}", "model.estimator")
        if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
            raise UserError(f"model {self.name}: {self.estimator} is not a classifier class with fit and "
                            "predict_proba")
        return cls

    def build(self, dataset: Dataset) -> nn.Module:
        try:
            estimator = self._estimator_class()(**self.kwargs)
        except TypeError as error:
            raise UserError(f"model {self.name}: {self.estimator}(**kwargs) failed: {error}") from None
        return SklearnClassifier(estimator, dataset.n_classes, math.prod(dataset.input_shape))

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        estimator = module.estimator  # type: ignore[union-attr]
        if "random_state" in inspect.signature(type(estimator)).parameters and "random_state" not in self.kwargs:
            estimator.set_params(random_state=seed)
        x = dataset.train.x.reshape(len(dataset.train), -1).numpy().astype(np.float64)
        estimator.fit(x, dataset.train.y.numpy())
        return module.eval()

    def save(self, module: nn.Module) -> bytes:
        return pickle.dumps(module.estimator, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[union-attr]

    def load(self, module: nn.Module, payload: bytes) -> nn.Module:
        estimator = pickle.loads(payload)  # noqa: S301 - trusted local store, see the module docstring
        if type(estimator) is not self._estimator_class():
            raise ValueError(f"cached estimator is a {type(estimator).__name__}, not {self.estimator}")
        classes = np.asarray(getattr(estimator, "classes_", []))
        fitted_here = (
            getattr(estimator, "n_features_in_", None) == module.n_features  # type: ignore[union-attr]
            and classes.size > 0
            and np.isin(classes, np.arange(module.n_classes)).all()  # type: ignore[union-attr]
        )
        if not fitted_here:
            raise ValueError("cached estimator is unfitted or fitted for another feature or class count")
        module.estimator = estimator  # type: ignore[union-attr]
        return module
