"""Rule extraction with a decision-tree surrogate (global surrogate models, e.g. Craven & Shavlik, 1996,
"Extracting Tree-Structured Representations of Trained Networks"), with local attributions from the decision
path (Saabas, 2014, "Interpreting random forests": per-split changes of the predicted class probability)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from sklearn.tree import DecisionTreeClassifier, export_text
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, check_tabular
from xaibench.explainers.seeding import generator, stage_seed
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality

_PREDICT_BATCH = 4096


@dataclass(frozen=True)
class SurrogateTree:
    """A fitted surrogate: the tree and its agreement with the model (fitting sample and a held-out sample)."""

    tree: DecisionTreeClassifier
    fidelity: float
    holdout_fidelity: float

    def rules_text(self, feature_names: Sequence[str] | None = None, decimals: int = 3) -> str:
        """The tree as if-then rules (``sklearn.tree.export_text``), naming features if names are given."""
        names = list(feature_names) if feature_names else [f"x{i}" for i in range(self.tree.n_features_in_)]
        return export_text(self.tree, feature_names=names, decimals=decimals)

    def path_contributions(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Saabas contributions ``(N, F)``: each split on a sample's path adds ``p_t(child) - p_t(parent)`` to the
        split feature, so a row sums to ``p_t(leaf) - p_t(root)`` for its target class ``t``."""
        structure = self.tree.tree_
        values = structure.value[:, 0, :]
        probabilities = values / np.clip(values.sum(axis=1, keepdims=True), 1e-12, None)
        columns = {int(c): j for j, c in enumerate(self.tree.classes_)}
        paths = self.tree.decision_path(x)
        out = np.zeros(x.shape, dtype=np.float64)
        for i in range(len(x)):
            column = columns.get(int(target[i]))
            if column is None:  # the model never predicted this class on the reference sample
                continue
            nodes = np.sort(paths.indices[paths.indptr[i] : paths.indptr[i + 1]])
            for parent, child in zip(nodes[:-1], nodes[1:]):
                out[i, structure.feature[parent]] += probabilities[child, column] - probabilities[parent, column]
        return out


def export_rules(surrogate: SurrogateTree, feature_names: Sequence[str] | None = None) -> str:
    """Rules of a fitted surrogate as text (see :meth:`SurrogateTree.rules_text`)."""
    return surrogate.rules_text(feature_names)


@EXPLAINERS.register("decision_tree")
@dataclass(frozen=True)
class DecisionTreeSurrogateExplainer(Explainer):
    """A ``DecisionTreeClassifier`` fitted to the model's predictions; attributions from each sample's path.

    The reference sample is ``n_samples`` draws of ``N(baseline, scale^2 I)`` in the (standardised) feature space,
    plus as many held out, from a generator seeded by the stage seed: the tree is global and the same whatever the
    batch (tolerance 1e-5). Extras per sample: ``fidelity`` (agreement with the model on the fitting sample: 1.0
    when the tree can represent the model), ``holdout_fidelity`` and ``agrees`` (the tree predicts the model's
    class for this sample) and ``rules`` (the tree as text with features named ``x0, x1, ...``, the same string
    for every sample, so reports can show the rules from the store without refitting). Rules of a new fit:
    :meth:`fit` then :meth:`SurrogateTree.rules_text`.
    """

    modalities = frozenset({Modality.TABULAR})
    positive_params = ("n_samples", "max_depth", "min_samples_leaf", "scale")
    n_samples: int = 2000
    max_depth: int = 4
    min_samples_leaf: int = 1
    baseline: float = 0.0
    scale: float = 1.0

    def fit(self, model: nn.Module, n_features: int, like: torch.Tensor | None = None) -> SurrogateTree:
        """Fit the surrogate on the seeded reference sample (deterministic under ``torch.manual_seed``)."""
        like = torch.empty(0) if like is None else like
        seed = stage_seed("decision_tree")
        draws = torch.randn((2 * self.n_samples, n_features), generator=generator(seed), dtype=torch.float64)
        reference = (self.baseline + self.scale * draws).to(like.device, like.dtype)
        labels = _predict(model, reference)
        fit_x, fit_y = reference[: self.n_samples].cpu().numpy(), labels[: self.n_samples]
        held_x, held_y = reference[self.n_samples :].cpu().numpy(), labels[self.n_samples :]
        tree = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf, random_state=seed)
        tree.fit(fit_x, fit_y)
        return SurrogateTree(tree, float((tree.predict(fit_x) == fit_y).mean()), float((tree.predict(held_x) == held_y).mean()))

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Every call refits the tree on its ``2 x n_samples`` reference rows (predicted ``4,096`` per forward), then
        predicts the inputs."""
        return CallRows(per_input=1, per_call=min(2 * self.n_samples, _PREDICT_BATCH))

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_tabular("decision_tree", x)
        surrogate = self.fit(model, x.shape[1], x)
        rows = x.detach().cpu().numpy()
        attributions = surrogate.path_contributions(rows, target.cpu().numpy())
        agrees = surrogate.tree.predict(rows) == _predict(model, x.detach())
        n = len(x)
        return Explanation(
            torch.as_tensor(attributions, dtype=x.dtype, device=x.device),
            extras={
                "fidelity": np.full(n, surrogate.fidelity),
                "holdout_fidelity": np.full(n, surrogate.holdout_fidelity),
                "agrees": agrees.astype(np.float64),
                "rules": np.array([surrogate.rules_text()] * n),
            },
        )


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    labels = [model(x[i : i + _PREDICT_BATCH]).argmax(dim=1) for i in range(0, len(x), _PREDICT_BATCH)]
    return torch.cat(labels).cpu().numpy()
