"""Corrections to a method's computation within one package version: joined into the keys of the cells they change.

Stage keys hash the config and the package version, not the code (``docs/keys.md``), so a fix that moves a
method's maps would otherwise let the store serve the old ones. A :class:`Revision` names the methods,
``explain_output`` values and models a fix changes; their cell and explanation keys (hence score keys) take its tag,
every other cell keeps its key and its stored stages. The random draws are not affected: the explanation seed hashes
the unversioned identity (``CellSpec.explanation_key(versioned=False)``). Importable without torch (the cell key is
computed before any registry is loaded). Fold the table into the next package version bump, which invalidates
everything anyway.
"""
from __future__ import annotations

from dataclasses import dataclass

from xaibench.explainers.output_kinds import EXPLAIN_OUTPUTS

# Zoo models built without ``nn.Softmax`` layers (only ``vit`` and ``text_transformer`` have them); any other name
# (a user's ``torch_module``, a Hugging Face model, a plugin) may hold one.
SOFTMAX_FREE_MODELS = frozenset({"audio_cnn1d", "cnn", "cnn1d", "least_squares", "logreg", "mlp", "sklearn_estimator",
                                 "spectrogram_cnn"})


@dataclass(frozen=True)
class Revision:
    """A fix that changed ``methods``' maps for the listed ``explain_outputs`` on every model but
    ``unchanged_models``; ``tag`` joins their keys."""

    tag: str
    methods: frozenset[str]
    explain_outputs: frozenset[str]
    why: str
    unchanged_models: frozenset[str] = frozenset()

    def applies(self, method: str, explain_output: str, model: str) -> bool:
        return method in self.methods and explain_output in self.explain_outputs and model not in self.unchanged_models


# Zoo models without an elementwise nonlinearity captum's DeepLIFT has no rule for (``nn.GELU``: only ``vit`` and
# ``text_transformer`` hold one), nor a LayerNorm or attention product (the same two).
GELU_FREE_MODELS = SOFTMAX_FREE_MODELS

# The zoo's own models (built from modules captum hooks, no functional nonlinearity: checked by
# ``test_no_zoo_model_calls_a_nonlinearity_as_a_function``); any other name may call ``F.relu`` or hold layers LRP
# now reaches.
ZOO_MODELS = SOFTMAX_FREE_MODELS | {"text_transformer", "vit"}

REVISIONS: tuple[Revision, ...] = (
    Revision(
        tag="output-rules-in-sweeps",
        methods=frozenset({"deeplift", "deeplift_shap", "lrp"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS) - {"logit"},
        why="the sweep wrapped the explained output in its forward counter, which hid it from the output rules: "
            "stored maps backpropagated plain gradients through the transform (re-explanations did not)",
    ),
    Revision(
        tag="deeplift-softmax-per-sample",
        methods=frozenset({"deeplift"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=SOFTMAX_FREE_MODELS,
        why="captum's nn.Softmax rule centres the multipliers over the whole batch: models with softmax layers are "
            "now explained one sample at a time, so a map no longer depends on the samples explained with it",
    ),
    Revision(
        tag="hooked-methods-read-the-forward",
        methods=frozenset({"deeplift", "deeplift_shap", "guided_backprop", "lrp"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=ZOO_MODELS,
        why="a forward calling F.relu (or another nonlinearity) outside modules made these methods plain gradients "
            "silently: such cells are now not_applicable with the reason; LRP now runs on own networks of supported "
            "layers (it was not_applicable): stored cells of own models must not be served",
    ),
    Revision(
        tag="deeplift-rescales-elementwise",
        methods=frozenset({"deeplift", "deeplift_shap"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=GELU_FREE_MODELS,
        why="captum's DeepLIFT crossed nn.GELU, nn.SiLU and other elementwise modules it has no rule for with their "
            "gradient: they now get the Rescale rule (F.gelu as a function is not_applicable)",
    ),
    Revision(
        tag="relu-spellings",
        methods=frozenset({"deeplift", "deeplift_shap", "guided_backprop"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=ZOO_MODELS,
        why="a ReLU written as x.clamp(min=0), torch.maximum(x, zeros), torch.where(x > 0, x, 0)... was crossed "
            "with plain gradients under these methods' names: such cells are now not_applicable with the reason",
    ),
    Revision(
        tag="deeplift-no-rule-no-map",
        methods=frozenset({"deeplift", "deeplift_shap"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=GELU_FREE_MODELS,
        why="captum's DeepLIFT crossed nn.LayerNorm, GLU, attention products (q @ k^T, softmax(.) @ v) and x * y of "
            "two input-dependent tensors with their gradient, unflagged: such cells (the zoo's vit and "
            "text_transformer) are now not_applicable with the reason",
    ),
    Revision(
        tag="deeplift-functional-maths",
        methods=frozenset({"deeplift", "deeplift_shap"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=ZOO_MODELS,
        why="captum's DeepLIFT crossed maths called as functions on activations (torch.exp, x ** 2, torch.sqrt, "
            "torch.log, h.clamp(-1, 1), h.amax(dim), a softmax inside the network ...) with their gradient, "
            "and nn.Softmax inside the network with a rule that does not sum to the output change, unflagged: such "
            "cells are now not_applicable with the reason; a softmax, nn.Softmax or log_softmax that is the model's "
            "output is crossed exactly (centred output-rule multipliers; the maps moved by up to 0.02 of changes of "
            "1.2-1.7 under log_odds, by 0.38 under logit of a log_softmax model, by 7.0 through nn.Softmax)",
    ),
    Revision(
        tag="lrp-functional-relus",
        methods=frozenset({"lrp"}),
        explain_outputs=frozenset(EXPLAIN_OUTPUTS),
        unchanged_models=ZOO_MODELS,
        why="LRP refused ReLUs spelt x.clamp(min=0), torch.maximum(x, zeros)... (not_applicable) and, under the gamma "
            "and alpha1_beta0 rules, masked F.relu's relevance with the sign of the changed-weights forward: both now "
            "pass relevance as captum's nn.ReLU does",
    ),
)


def revision_tags(method: str, explain_output: str, model: str) -> list[str]:
    """Tags of the revisions that changed ``method`` under ``explain_output`` on ``model`` (registry names;
    ``[]``: the keys are what they were)."""
    return [f"revision={r.tag}" for r in REVISIONS if r.applies(method, explain_output, model)]
