"""DeepLIFT (Shrikumar et al., 2017, "Learning Important Features Through Propagating Activation Differences")
and DeepLIFT-SHAP (Lundberg & Lee, 2017): DeepLIFT averaged over a baseline distribution."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import DeepLift, DeepLiftShap
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR, softmax as captum_softmax_rule
from torch import nn

from xaibench.errors import UserError
from xaibench.explainers.base import CallRows, Explainer, diagnostics_enabled
from xaibench.explainers.gradient._hooks import refuse_functional_deeplift, refuse_scripted, rescale_elementwise
from xaibench.explainers.inputs import Baseline, GradientView, baseline_distribution
from xaibench.explainers.output_rules import Readout, deeplift_multipliers, split_output
from xaibench.metrics.quiet import ignore_warnings
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality

# captum announces on every call that it hooks the nonlinearities (and removes the hooks afterwards).
_HOOK_NOTICE = "Setting forward, backward hooks"


def _as_module(forward) -> nn.Module:
    if not isinstance(forward, nn.Module):
        raise TypeError("DeepLIFT needs an nn.Module (it hooks the model's nonlinearities)")
    return forward


def deeplift(forward: nn.Module, kind: str, inputs: torch.Tensor, baselines: torch.Tensor, target: torch.Tensor,
             with_delta: bool, centred: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """captum ``DeepLift`` of ``kind`` for inputs and baselines ``(N, ...)`` of the logit model ``forward``.

    ``logit``: captum as is. Otherwise the output transform's multipliers (``output_rules.deeplift_multipliers``,
    Rescale rule; ``centred`` for a model whose output is a (log-)softmax: :func:`rule_for`) weight the logits, and
    captum's rules run from the logits down: the attributions sum to ``T(f(x)) - T(f(baseline))`` of the explained
    output ``T``.
    """
    with ignore_warnings(message=_HOOK_NOTICE), rescale_elementwise():  # the warnings: this thread's only (quiet.py)
        if kind == "logit":
            return DeepLift(forward).attribute(inputs, baselines=baselines, target=target,
                                               return_convergence_delta=with_delta)
        with torch.no_grad():
            multipliers = deeplift_multipliers(kind, forward(inputs), forward(baselines), target, centred=centred)
        method = GradientThroughSoftmax if centred else DeepLift
        return method(Readout(forward)).attribute(inputs, baselines=baselines, target=0,
                                                    additional_forward_args=(multipliers.to(inputs.dtype),),
                                                    return_convergence_delta=with_delta)


class GradientThroughSoftmax(DeepLift):
    """captum's ``DeepLift`` without its ``nn.Softmax`` rule: for a model whose output is an ``nn.Softmax``, crossed
    by its gradient as a functional softmax at the output is (exact with centred output multipliers:
    ``output_rules.deeplift_multipliers``). An ``nn.Softmax`` on input-dependent values anywhere else is refused
    (``_hooks.refuse_functional_deeplift``); over parameters only, no input's gradient passes through it."""

    def _is_non_linear(self, module: nn.Module) -> bool:
        return type(module) is not nn.Softmax and super()._is_non_linear(module)


def couples_the_batch(forward: nn.Module) -> bool:
    """Whether captum's DeepLIFT makes a sample's map depend on the samples explained with it on ``forward``: its
    rule for ``nn.Softmax`` subtracts the mean
    multiplier over the whole tensor, every sample of the batch included (captum ``deep_lift.softmax``)."""
    return any(SUPPORTED_NON_LINEAR.get(type(m)) is captum_softmax_rule for m in forward.modules())


def deeplift_per_sample(forward: nn.Module, kind: str, inputs: torch.Tensor, baselines: torch.Tensor,
                        target: torch.Tensor, with_delta: bool, centred: bool = False
                        ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`deeplift` one sample at a time ``(N, ...)``: the softmax rule's mean then runs over that sample alone,
    so its map is the same in any batch (the sweep's, a metric's re-explanation's, ``batch_size=1``)."""
    parts = [deeplift(forward, kind, inputs[i : i + 1].detach().requires_grad_(True), baselines[i : i + 1],
                      target.reshape(-1)[i : i + 1], with_delta, centred) for i in range(len(inputs))]
    if not with_delta:
        return torch.cat(parts)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def rule_for(kind: str, normaliser: str) -> tuple[str, bool]:
    """``(explained output to apply the output rule for, centred)`` on a model whose output is ``normaliser``
    (``_hooks.refuse_functional_deeplift``: ``"log_softmax"``, a softmax through the suite's log included, or
    ``""``).

    A final log_softmax ``z = log p`` is crossed exactly by centred multipliers (``output_rules.deeplift_multipliers``;
    its gradient ``I - 1 p^T`` leaves them as they are). Its ``logit`` is ``log p_t``, which is the ``log_softmax``
    output of ``log p`` (``sum_k p_k = 1``): that rule, not captum's gradient through the normalisation, makes the map
    sum to ``log p_t(x) - log p_t(baseline)``. Only ``z = log p`` has that gradient: a softmax returned as it is
    (``z = p``) is refused before (``_hooks.refuse_functional_deeplift``).
    """
    if normaliser != "log_softmax":
        return kind, False
    return ("log_softmax" if kind == "logit" else kind), True


def checked_view(model: nn.Module, x: torch.Tensor, method: str) -> tuple[GradientView, nn.Module, str, bool]:
    """``(view, its forward, explained output to rule, centred)`` of ``model`` (the explained-output transform over
    the logit model) for ``x`` ``(N, ...)``; raises ``NotApplicable`` where DeepLIFT has no rule for what the
    forward computes (``_hooks.py``)."""
    refuse_scripted(model, method)
    logits, kind = split_output(model)
    view = GradientView.of(logits, x)
    forward = _as_module(view.forward)
    kind, centred = rule_for(kind, refuse_functional_deeplift(forward, view.inputs, method))
    return view, forward, kind, centred


class _ReadsTheForward:
    """DeepLIFT's applicability read off the model's forward, asked before training too
    (``engine/applicability.untrained_not_applicable``)."""

    def refuse_model(self, model: nn.Module, x: torch.Tensor) -> None:
        """Raise ``NotApplicable`` where :meth:`explain` would for ``model`` (trained or not: the operations its
        forward runs on ``x`` ``(N, ...)`` are what decides)."""
        checked_view(model, x, self.name)


@EXPLAINERS.register("deeplift")
@dataclass(frozen=True)
class DeepLiftExplainer(_ReadsTheForward, Explainer):
    """captum ``DeepLift`` (Rescale rule) from ``baseline`` (text: pad-token embeddings).

    The Rescale rule applies to every elementwise nonlinearity module, ``nn.GELU``, ``nn.SiLU``... included (captum
    alone would cross those with their gradient: ``_hooks.rescale_elementwise``). What no DeepLIFT rule crosses
    (``nn.LayerNorm``, ``nn.GLU``, attention's ``q @ k^T`` and ``softmax(.) @ v``, ``x * y`` of two input-dependent
    tensors: the zoo's ``vit`` and ``text_transformer`` hold them) makes the cell ``not_applicable``: captum would
    cross it with its gradient, unflagged (``_hooks.DEEPLIFT_UNRULED``).
    Needs nonlinearities as modules (``nn.ReLU``, not ``F.relu``), as the zoo builds them: captum would pass
    plain gradients through functional ones, so a model that calls one is ``not_applicable`` (``_hooks.py``), as is
    one computing maths no module with a rule computes on its activations (``torch.exp(h)``, ``h ** 2``, a softmax
    inside the network: ``_hooks.DEEPLIFT_NO_MODULE``). A non-logit ``explain_output`` gets the Rescale rule too
    (``output_rules.py``; centred where the model's output is a softmax or log_softmax: :func:`rule_for`), so the
    attributions sum to the change of the explained output. Records the per-sample summation-to-delta error in
    ``extras["convergence_delta"]``. Deterministic; batch tolerance 1e-5. A model with ``nn.Softmax`` layers (an own
    model's softmax weights) is explained one sample at a time, as captum's softmax rule would otherwise mix the
    batch into each map (:func:`couples_the_batch`); an ``nn.Softmax`` on input-dependent values is refused inside
    the network, and crossed by its gradient as the model's output (:class:`GradientThroughSoftmax`).
    """

    requires = frozenset({Capability.GRADIENTS})
    baseline: Baseline = 0.0

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """captum forwards the inputs and their baselines together: two rows per input."""
        return CallRows(per_input=2)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view, forward, kind, centred = checked_view(model, x, self.name)
        with_delta = diagnostics_enabled()
        run = deeplift_per_sample if couples_the_batch(forward) else deeplift
        result = run(forward, kind, view.inputs, view.baselines(self.baseline), target, with_delta, centred)
        if not with_delta:
            return Explanation(view.to_output(result))
        attributions, delta = result
        return Explanation(view.to_output(attributions), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})


@EXPLAINERS.register("deeplift_shap")
@dataclass(frozen=True)
class DeepLiftShapExplainer(_ReadsTheForward, Explainer):
    """captum ``DeepLiftShap``: DeepLIFT averaged over ``n_baselines`` baselines ``baseline + baseline_std * N(0, I)``.

    The baselines are drawn per sample from its own seed (text: around the pad-token embeddings), so a batch
    equals each sample alone (tolerance 1e-5). ``extras["convergence_delta"]``: mean |delta| over the baselines.
    """

    requires = frozenset({Capability.GRADIENTS})
    non_negative_params = ("baseline_std",)
    n_baselines: int = 16
    baseline: Baseline = 0.0
    baseline_std: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_baselines < 2:
            raise UserError(f"method 'deeplift_shap': n_baselines must be >= 2 (a distribution), got {self.n_baselines}")

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """One sample at a time: its ``n_baselines`` copies and the baselines in one forward."""
        return CallRows(per_input=0, per_call=2 * self.n_baselines)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view, forward, kind, centred = checked_view(model, x, self.name)
        centres = view.baselines(self.baseline)
        maps, deltas = [], []
        for i, seed in enumerate(view.seeds("deeplift_shap")):
            baselines = baseline_distribution(centres[i : i + 1], self.baseline_std, self.n_baselines, seed)
            attributions, delta = self._one_sample(forward, kind, view.inputs[i : i + 1], baselines, target[i : i + 1],
                                                   centred)
            maps.append(attributions)
            deltas.append(delta.detach().abs().mean())
        return Explanation(view.to_output(torch.cat(maps)), extras={"convergence_delta": torch.stack(deltas).cpu().numpy()})

    @staticmethod
    def _one_sample(forward: nn.Module, kind: str, sample: torch.Tensor, baselines: torch.Tensor, target: torch.Tensor,
                    centred: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Attributions ``(1, ...)`` and deltas ``(B,)``: the mean of DeepLIFT over the ``B`` baselines (what captum's
        ``DeepLiftShap`` computes; written out for a non-logit output, whose multipliers depend on each baseline)."""
        if kind == "logit":
            with ignore_warnings(message=_HOOK_NOTICE), rescale_elementwise():
                return DeepLiftShap(forward).attribute(sample, baselines=baselines, target=target,
                                                       return_convergence_delta=True)
        repeated = sample.detach().expand(len(baselines), *sample.shape[1:]).clone().requires_grad_(True)
        attributions, delta = deeplift(forward, kind, repeated, baselines, target.expand(len(baselines)), True, centred)
        return attributions.mean(dim=0, keepdim=True), delta
