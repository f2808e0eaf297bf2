"""DeepLIFT (Shrikumar et al., 2017, "Learning Important Features Through Propagating Activation Differences")
and DeepLIFT-SHAP (Lundberg & Lee, 2017): DeepLIFT averaged over a baseline distribution."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from captum.attr import DeepLift, DeepLiftShap
from torch import nn

from xaibench.errors import UserError
from xaibench.explainers.base import Explainer, diagnostics_enabled
from xaibench.explainers.inputs import Baseline, GradientView, baseline_distribution
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation

# captum announces on every call that it hooks the nonlinearities (and removes the hooks afterwards).
_HOOK_NOTICE = "Setting forward, backward hooks"


def _as_module(forward) -> nn.Module:
    if not isinstance(forward, nn.Module):
        raise TypeError("DeepLIFT needs an nn.Module (it hooks the model's nonlinearities)")
    return forward


@EXPLAINERS.register("deeplift")
@dataclass(frozen=True)
class DeepLiftExplainer(Explainer):
    """captum ``DeepLift`` (Rescale rule) from ``baseline`` (text: pad-token embeddings).

    Needs nonlinearities as modules (``nn.ReLU``, not ``F.relu``), as the zoo builds them; functional ops fall
    back to plain gradients. Records the per-sample summation-to-delta error in ``extras["convergence_delta"]``.
    Deterministic; batch tolerance 1e-5.
    """

    requires = frozenset({Capability.GRADIENTS})
    baseline: Baseline = 0.0

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_HOOK_NOTICE)
            with_delta = diagnostics_enabled()
            result = DeepLift(_as_module(view.forward)).attribute(
                view.inputs, baselines=view.baselines(self.baseline), target=target,
                return_convergence_delta=with_delta,
            )
        if not with_delta:
            return Explanation(view.to_output(result))
        attributions, delta = result
        return Explanation(view.to_output(attributions), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})


@EXPLAINERS.register("deeplift_shap")
@dataclass(frozen=True)
class DeepLiftShapExplainer(Explainer):
    """captum ``DeepLiftShap``: DeepLIFT averaged over ``n_baselines`` baselines ``baseline + baseline_std * N(0, I)``.

    The baselines are drawn per sample from its own seed (text: around the pad-token embeddings), so a batch
    equals each sample alone (tolerance 1e-5). ``extras["convergence_delta"]``: mean |delta| over the baselines.
    """

    requires = frozenset({Capability.GRADIENTS})
    n_baselines: int = 16
    baseline: Baseline = 0.0
    baseline_std: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_baselines < 2:
            raise UserError(f"method 'deeplift_shap': n_baselines must be >= 2 (a distribution), got {self.n_baselines}")

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        method = DeepLiftShap(_as_module(view.forward))
        centres = view.baselines(self.baseline)
        maps, deltas = [], []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_HOOK_NOTICE)
            for i, seed in enumerate(view.seeds("deeplift_shap")):
                baselines = baseline_distribution(centres[i : i + 1], self.baseline_std, self.n_baselines, seed)
                attributions, delta = method.attribute(
                    view.inputs[i : i + 1], baselines=baselines, target=target[i : i + 1], return_convergence_delta=True,
                )
                maps.append(attributions)
                deltas.append(delta.detach().abs().mean())
        return Explanation(view.to_output(torch.cat(maps)), extras={"convergence_delta": torch.stack(deltas).cpu().numpy()})
