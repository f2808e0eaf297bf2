"""Guided Backpropagation (Springenberg et al., 2015, "Striving for Simplicity: The All Convolutional Net")."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import GuidedBackprop
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.gradient._hooks import refuse_functional_relu, refuse_scripted
from xaibench.explainers.inputs import GradientView
from xaibench.metrics.quiet import ignore_warnings
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation

# captum announces on every call that it hooks the ReLUs (and removes the hooks afterwards).
_HOOK_NOTICE = "Setting backward hooks on ReLU activations"


@EXPLAINERS.register("guided_backprop")
@dataclass(frozen=True)
class GuidedBackpropExplainer(Explainer):
    """captum ``GuidedBackprop``: the input gradient of the target logit where every ``nn.ReLU`` passes back only
    positive gradients (and only where its input was positive), shaped like ``x`` (text: per token, summed over D).

    Only ReLUs that are modules (``nn.ReLU``, as the zoo builds them) are modified; a model without one gets its
    plain gradient (``saliency`` with ``abs=False``), and one that calls ``F.relu`` (``x.relu()``) is
    ``not_applicable`` (``_hooks.py``: that ReLU's gradient would pass unchanged). Adebayo et al. (2018) show it
    is nearly insensitive to the model's parameters (an edge detector): see the randomisation metrics.
    Deterministic; batch tolerance 1e-5.
    """

    requires = frozenset({Capability.GRADIENTS})

    def refuse_model(self, model: nn.Module, x: torch.Tensor) -> None:
        """Raise ``NotApplicable`` where :meth:`explain` would for ``model``, trained or not (asked before training:
        ``engine/applicability.untrained_not_applicable``)."""
        self._checked_view(model, x)

    def _checked_view(self, model: nn.Module, x: torch.Tensor) -> tuple[GradientView, nn.Module]:
        refuse_scripted(model, self.name)
        view = GradientView.of(model, x)
        forward = view.forward
        if not isinstance(forward, nn.Module):
            raise TypeError("guided_backprop needs an nn.Module (it hooks the model's nn.ReLU layers)")
        refuse_functional_relu(forward, view.inputs, self.name)
        return view, forward

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view, forward = self._checked_view(model, x)
        with ignore_warnings(message=_HOOK_NOTICE):  # this thread's only (quiet.py)
            attributions = GuidedBackprop(forward).attribute(view.inputs, target=target)
        return Explanation(view.to_output(attributions))
