"""The explained output: which function of the model's class scores an attribution explains (``explain_output``).

A classifier returns logits ``z (N, K)``; an explanation of "class t" attributes one scalar per sample to the
input features. Three scalars are in use, and they do not mean the same thing:

- ``log_softmax`` (the default): ``log p_t = z_t - logsumexp(z)``, the log-likelihood of class t. It is a
  *contrast* with the other classes: evidence for t is what raises ``z_t`` more than its competitors. This is what
  a reader means by "the evidence for the predicted class", and it does not saturate as fast as the probability.
- ``logit``: the raw score ``z_t`` alone. Removing an object can raise ``z_t`` while raising the other logits
  more (the class still loses), so signed logit attributions may mark the object as negative evidence: on
  ``synthetic_image`` a CNN's IG scores localisation AUC 0.39 on logits, 0.96 on log-probabilities.
- ``probability``: ``p_t = softmax(z)_t``; bounded, so it saturates (gradients vanish for confident
  predictions), but sums over features are changes in probability (what the faithfulness metrics with
  ``softmax: true`` measure).

The choice is a cell-level config key (in the explanation and cell keys) and a row column (``explain_output``).
Explainers see the model through :func:`explained_output`, and so does every re-explanation a metric makes
(``metrics/quantus_adapter.make_explain_func``). Metrics that query the model themselves declare their own output
in their params (Quantus' ``softmax``); see docs/meaning.md.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

EXPLAIN_OUTPUTS = ("log_softmax", "logit", "probability")
DEFAULT_EXPLAIN_OUTPUT = "log_softmax"

_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "log_softmax": lambda logits: torch.log_softmax(logits, dim=-1),
    "probability": lambda logits: torch.softmax(logits, dim=-1),
}

class ExplainedOutput(nn.Module):
    """``model`` with its class scores ``(N, K)`` replaced by ``log_softmax`` or ``softmax`` of them.

    Transparent otherwise: ``embed``, ``pad_id``, ``attention_maps``... are the model's own; ``forward_embedded``
    and ``forward_with_attention`` (whose first output is the logits) are transformed like ``forward``. Methods the
    model lacks stay absent (``hasattr`` answers as for the model), so input-kind detection is unchanged.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        if kind not in _TRANSFORMS:
            raise ValueError(f"explain_output must be one of {', '.join(EXPLAIN_OUTPUTS)}, got {kind!r}")
        self.model = model
        self.kind = kind

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        return _TRANSFORMS[self.kind](logits)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.transform(self.model(x, *args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = getattr(self._modules["model"], name)  # AttributeError when the model lacks it, as it should
        if name == "forward_embedded":
            return lambda embeddings: self.transform(inner(embeddings))
        if name == "forward_with_attention":
            def with_attention(x: torch.Tensor, *args: Any, **kwargs: Any):
                logits, attention = inner(x, *args, **kwargs)
                return self.transform(logits), attention
            return with_attention
        return inner


def explained_output(model: nn.Module, kind: str) -> nn.Module:
    """The module an explainer should see for ``kind``: ``model`` itself for ``logit``, else a wrapper."""
    if kind == "logit":
        return model
    return ExplainedOutput(model, kind)
