"""Adam for the zoo's training loop, stepping through torch's functional ``torch.optim.adam.adam``.

Why not ``torch.optim.Adam``: in torch 2.x every ``Optimizer`` method (``__init__`` via ``add_param_group``,
``zero_grad``, ``step``) imports ``torch._dynamo`` on first use, about 2 CPU-s per fresh process - paid again by every
cold sweep, joblib/submitit worker and subprocess test that trains a model. ``torch.optim.Adam.step`` itself only
gathers the state and calls the functional ``adam`` with its defaults; this class does the same, so the weights are
bit for bit those of ``torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)`` (pinned by
``tests/unit/test_models.py::test_functional_adam_matches_torch_adam_bit_for_bit``), on CPU (single-tensor
kernel) and on CUDA (torch picks its foreach kernel the same way, from the parameters' devices).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam


class FunctionalAdam:
    """Adam (no amsgrad, no maximize, coupled L2 weight decay), state kept per parameter as torch keeps it.

    ``params``: the tensors to optimise (each gets ``exp_avg``/``exp_avg_sq`` of its own shape and a scalar
    ``step`` tensor on the CPU, as ``torch.optim.Adam`` with ``capturable=False, fused=None`` keeps them).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop every gradient (``torch.optim.Optimizer.zero_grad(set_to_none=True)``)."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter holding a gradient (what ``torch.optim.Adam.step`` does)."""
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for param in self.params:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients")
            state = self.state.get(param)
            if state is None:  # lazy, as torch: step on the CPU in the scalar dtype torch picks, moments zeroed
                scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
                state = self.state[param] = {
                    "step": torch.tensor(0.0, dtype=scalar_dtype, device="cpu"),
                    "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                }
            params.append(param)
            grads.append(param.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = self.betas
        adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=None, capturable=False, differentiable=False,
             fused=None, grad_scale=None, found_inf=None, has_complex=any(torch.is_complex(p) for p in params),
             decoupled_weight_decay=False, amsgrad=False, beta1=beta1, beta2=beta2, lr=self.lr,
             weight_decay=self.weight_decay, eps=self.eps, maximize=False)
