"""scikit-learn classifiers behind ``predict_proba``: for model-agnostic methods only (capability ``PROBA``).

The module returns log-probabilities (logits of ``predict_proba``), see ``SklearnClassifier``.

Two ways in: fitted in-suite from a class and kwargs, or **pre-fitted, loaded from the user's file** (``path``),
explained as it is, never refitted. Files are read in a safe format, skops (``.skops``: ``skops.io.load`` refuses
types it does not trust, and the error names them); ``.pkl``/``.pickle``/``.joblib`` run code when loaded, so
they are only read with an explicit ``trusted: true``.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaibench.data.classes import class_name
from xaibench.errors import UserError
from xaibench.models.adapters._kwargs_hint import kwargs_hint
from xaibench.models.adapters._source import import_object, own_code_digest, path_digest, require_local
from xaibench.models.base import ModelSpec
from xaibench.models.outputs import log_probabilities
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


class SklearnClassifier(nn.Module):
    """``forward(x (N, ...)) -> log-probabilities (N, K)``: ``log estimator.predict_proba`` on flattened inputs.

    Log-probabilities are logits of the estimator's probabilities (``softmax`` gives them back), so every
    ``explain_output`` and every metric's softmax reads what it means (``xaibench/models/outputs.py``): explaining
    the raw probabilities as logits would explain something else. A probability of 0 (classes missing from the
    training split, pure leaves) is floored at ``outputs.PROBABILITY_FLOOR``. Not differentiable (numpy inside).
    An estimator fitted on a DataFrame (``feature_names_in_``) gets one with those column names, in its own column
    order (``feature_order``), as scikit-learn expects (no "X does not have valid feature names" warning per call).
    The empty ``device_anchor`` parameter only lets code that asks ``next(model.parameters()).device`` find a
    device.
    """

    def __init__(self, estimator: Any, n_classes: int, n_features: int, columns: Sequence[int] | None = None,
                 class_names: Sequence[str] = (), feature_order: Sequence[int] | None = None) -> None:
        """``columns[i]``: the output column of ``estimator.classes_[i]`` (default: the class value itself, for
        integer classes ``0..K-1``); ``class_names``: the names of the ``n_classes`` outputs when they are not
        their indices (a model fitted on string labels); ``feature_order[j]``: the input feature that is the
        estimator's column ``j`` (default: the same order, see :func:`feature_order`)."""
        super().__init__()
        self.estimator = estimator
        self.n_classes = n_classes
        self.n_features = n_features
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.class_names = tuple(class_names)
        self.feature_order = None if feature_order is None else np.asarray(feature_order, dtype=np.int64)
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(x.shape[0], -1).cpu().numpy().astype(np.float64)
        if self.feature_order is not None:
            flat = flat[:, self.feature_order]
        names = getattr(self.estimator, "feature_names_in_", None)  # fitted on a DataFrame: give it one
        inputs = flat if names is None else pd.DataFrame(flat, columns=names)
        proba = np.zeros((x.shape[0], self.n_classes))
        columns = self.columns if self.columns is not None else np.asarray(self.estimator.classes_, dtype=np.int64)
        proba[:, columns] = self.estimator.predict_proba(inputs)
        return log_probabilities(torch.as_tensor(proba)).to(dtype=torch.float32, device=x.device)


def class_columns(classes: Sequence[Any], dataset: Dataset, what: str) -> tuple[int, ...]:
    """For each of a fitted model's ``classes_``, the index of the dataset class it scores.

    Classes match by name, as :func:`xaibench.data.classes.class_name` spells them, so string classes (``benign``)
    map to the dataset's classes from the same label column whatever the order or dtype. A model fitted on the
    indices themselves (``0..K-1``, e.g. on ``dataset.train.y`` of a dataset whose classes have names) is read by
    index. Both sides must hold the same classes: a dataset label the model cannot predict, or a model class the
    dataset never has, is a ``UserError``.
    """
    names = [class_name(c) for c in np.asarray(classes, dtype=object)]
    labels = [dataset.class_name(i) for i in range(dataset.n_classes)]
    if set(names) != set(labels) and set(names) == {str(i) for i in range(dataset.n_classes)}:
        return tuple(int(n) for n in names)  # fitted on the class indices
    unknown = [n for n in labels if n not in names]
    extra = [n for n in names if n not in labels]
    if unknown or extra:
        problem = (f"the dataset's label(s) {', '.join(map(repr, unknown[:3]))} are not classes of the model" if unknown
                   else f"its class(es) {', '.join(map(repr, extra[:3]))} never occur in the dataset's target")
        raise UserError(f"{what} predicts classes {_listed(names)}, dataset {dataset.name} has {_listed(labels)}: "
                        f"{problem}; explain it on a table whose target column holds its classes")
    position = {n: i for i, n in enumerate(labels)}
    return tuple(position[n] for n in names)


DATASET_COLUMNS = ("the dataset's features", "fit it on the dataset's features (dataset.features=[...] chooses "
                   "columns; one-hot encoded columns are named column=value)")  # (what they are, the fix)


def feature_order(estimator: Any, feature_names: Sequence[str], what: str,
                  given: tuple[str, str] = DATASET_COLUMNS) -> tuple[int, ...] | None:
    """For each column a fitted model was fitted on (``feature_names_in_``, set when it was fitted on a
    DataFrame), the index of the dataset feature of that name; None when the orders agree or there are no names.

    The suite passes features in the dataset's order (a table's column order): a model fitted on the same columns
    in another order would silently read one feature as another, so they are matched by name, as scikit-learn
    does for DataFrames. Names that are not the dataset's features are refused.
    """
    fitted = [str(n) for n in getattr(estimator, "feature_names_in_", ())]
    names = [str(n) for n in feature_names]
    if not fitted or not names or fitted == names:
        return None
    if sorted(fitted) == sorted(names) and len(set(names)) == len(names):
        return tuple(names.index(n) for n in fitted)
    unknown = [n for n in fitted if n not in names]
    problem = (f"its column(s) {', '.join(map(repr, unknown[:3]))} are missing" if unknown else
               f"{', '.join(map(repr, [n for n in names if n not in fitted][:3]))} are not columns of the model")
    raise UserError(f"{what} was fitted on columns {_listed(fitted)}, {given[0]} are {_listed(names)}: {problem}; "
                    f"{given[1]}")


def _listed(names: Sequence[str]) -> str:
    return "[" + ", ".join(names[:6]) + (", ...]" if len(names) > 6 else "]")


@MODELS.register("sklearn_estimator")
@dataclass(frozen=True)
class SklearnEstimator(ModelSpec):
    """Any scikit-learn-style classifier with ``predict_proba``, fitted in-suite on the flattened training split.

    ``random_state`` is set from the model seed when the estimator takes one and ``kwargs`` leave it unset, so
    fits are deterministic. ``epochs``/``lr``/``batch_size`` do not apply.

    Attributes:
        estimator: dotted path of the estimator class (``sklearn.ensemble.RandomForestClassifier``).
        kwargs: constructor keyword arguments.
        path: a fitted estimator saved with ``skops.io.dump`` (or pickle/joblib with ``trusted: true``); it is
            used as it is (``estimator``/``kwargs`` are then ignored, nothing is refitted).
        trusted: allow pickle/joblib files, and the types a ``.skops`` file holds beyond skops' defaults. Only
            for files you made yourself: loading them can run arbitrary code.
    """

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    capabilities = frozenset({Capability.PROBA})
    estimator: str = "sklearn.ensemble.RandomForestClassifier"
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    path: str | None = None
    trusted: bool = False

    def class_scores(self) -> str:
        return "probabilities"  # predict_proba; the module returns their logs (``SklearnClassifier``)

    def _estimator_class(self) -> type:
        cls = import_object(self.estimator, f"model {self.name}", "model.estimator")
        if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
            raise UserError(f"model {self.name}: {self.estimator} is not a classifier class with fit and "
                            "predict_proba")
        return cls

    def build(self, dataset: Dataset) -> nn.Module:
        if self.path is not None:
            return self._prefitted(dataset)
        cls = self._estimator_class()
        try:
            estimator = cls(**self.kwargs)
        except TypeError as error:
            raise UserError(f"model {self.name}: {self.estimator}(**kwargs) failed: {error}"
                            f"{kwargs_hint(cls, self.kwargs)}") from None
        return SklearnClassifier(estimator, dataset.n_classes, math.prod(dataset.input_shape))

    def _prefitted(self, dataset: Dataset) -> nn.Module:
        what = f"model {self.name}"
        estimator = load_estimator(require_local(self.path, what, "model.path"), self.trusted, what)
        n_features = math.prod(dataset.input_shape)
        if getattr(estimator, "n_features_in_", n_features) != n_features:
            raise UserError(f"{what}: {self.path} was fitted on {estimator.n_features_in_} features, dataset "
                            f"{dataset.name} has {n_features}")
        columns = class_columns(estimator.classes_, dataset, f"{what}: {self.path}")
        order = feature_order(estimator, dataset.feature_names, f"{what}: {self.path}")
        if hasattr(estimator, "feature_names_in_") and dataset.feature_scaling:
            from xaibench.data.user.encoding import warn_once

            warn_once(f"{what}: {self.path} was fitted on a DataFrame (named columns), but dataset {dataset.name} "
                      "standardises its features: if the model was fitted on raw values, explain it on a csv_table "
                      "with dataset.standardize=false (the model's accuracy in the results shows which)")
        return SklearnClassifier(estimator, dataset.n_classes, n_features, columns, dataset.class_names, order)

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        if self.path is not None:
            return module.eval()  # pre-fitted: explained as it is
        estimator = module.estimator  # type: ignore[union-attr]
        if "random_state" in inspect.signature(type(estimator)).parameters and "random_state" not in self.kwargs:
            estimator.set_params(random_state=seed)
        x = dataset.train.x.reshape(len(dataset.train), -1).numpy().astype(np.float64)
        estimator.fit(x, dataset.train.y.numpy())
        return module.eval()

    def trains_weights(self) -> bool:
        return self.path is None  # a fitted estimator file is used as it is

    def save(self, module: nn.Module) -> bytes:
        if self.path is not None:  # the user's file is the model: the store keeps only its fingerprint
            return path_digest(Path(self.path)).encode()
        return pickle.dumps(module.estimator, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[union-attr]

    def load(self, module: nn.Module, payload: bytes) -> nn.Module:
        if self.path is not None:  # ``build`` already loaded the file; the checkpoint only pins its content
            if payload.decode() != path_digest(Path(self.path)):
                raise ValueError(f"{self.path} changed since this model was cached")
            return module
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

    def source_revision(self) -> str:
        """The model file's sha256 (if any), plus what forward returns: cells stored when it returned
        ``predict_proba`` itself (read as logits) have other keys, so they are recomputed, never served. Without a
        model file, the sha256 of the file defining your own ``estimator`` class (``./ests.py:MyForest``, or an
        importable module of yours), as for a torch model's ``target``: editing it recomputes; a library's class
        (scikit-learn's) adds nothing, its keys are what they were."""
        file = path_digest(Path(self.path)) if self.path and Path(self.path).is_file() else ""
        if file:
            return f"{file}+{FORWARD_REVISION}+{COLUMNS_REVISION}"
        code = own_code_digest(self.estimator, "model.estimator") if self.path is None else ""
        return f"{FORWARD_REVISION}+code:{code}" if code else FORWARD_REVISION


FORWARD_REVISION = "forward=log_predict_proba"  # SklearnClassifier.forward's output (in the model keys)
COLUMNS_REVISION = "columns-by-name"  # pre-fitted models: cells stored before columns were matched by name are redone
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# Types from these packages in a .skops file are accepted (scikit-learn's own internals, e.g. a tree's ``Tree``,
# that skops lists as untrusted by default); any other type needs ``trusted: true``.
TRUSTED_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})


def load_estimator(path: Path, trusted: bool, what: str) -> Any:
    """A fitted classifier from ``.skops`` (safe) or, with ``trusted``, pickle/joblib; checked for predict_proba."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not trusted:
        raise UserError(f"{what}: {path} is a pickle/joblib file, which runs code when loaded; save the model with "
                        "skops.io.dump(model, 'model.skops'), or set model.trusted=true if you made this file")
    try:
        if suffix in PICKLE_SUFFIXES:
            import joblib

            estimator = joblib.load(path)  # noqa: S301 - explicitly trusted by the user
        elif suffix == ".skops":
            estimator = _load_skops(path, trusted, what)
        else:
            raise UserError(f"{what}: {path}: unknown model file type {suffix!r}; use .skops (or "
                            f"{'/'.join(PICKLE_SUFFIXES)} with model.trusted=true)")
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - an unreadable file is the user's
        raise UserError(f"{what}: cannot load {path}: {type(error).__name__}: {' '.join(str(error).split())[:200]}"
                        ) from None
    if not (hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")):
        raise UserError(f"{what}: {path} holds a {type(estimator).__name__}, not a fitted classifier with "
                        f"predict_proba{no_proba_hint(estimator)}")
    return estimator


def no_proba_hint(estimator: Any) -> str:
    """How to get probabilities from a classifier that only has ``decision_function`` (SVC, LinearSVC...)."""
    if not hasattr(estimator, "decision_function"):
        return ""
    return ("; it has only decision_function: fit SVC with probability=True, or wrap it in "
            "sklearn.calibration.CalibratedClassifierCV")


def _load_skops(path: Path, trusted: bool, what: str) -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise UserError(f"{what}: reading .skops files needs the skops package: pip install 'xaibench[sklearn]'"
                        ) from None
    untrusted = sio.get_untrusted_types(file=path)
    reviewed = [t for t in untrusted if t.split(".")[0] in TRUSTED_PACKAGES]
    if trusted:
        reviewed = untrusted
    untrusted = [t for t in untrusted if t not in reviewed]
    if untrusted:
        raise UserError(f"{what}: {path} holds types skops does not trust by default ({', '.join(untrusted[:5])}); "
                        "set model.trusted=true if you made this file")
    return sio.load(path, trusted=reviewed or None)
