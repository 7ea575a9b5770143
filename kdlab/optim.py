"""Adam, written out: the optimizer every kdlab model trains with.

It is torch.optim.Adam's update with its defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay), in the
same operations and the same order, so that on the CPU it gives the same weights bit for bit (a test runs
both). It exists because constructing any torch.optim optimizer imports torch's compiler (torch._dynamo):
about a second in every process that trains, some forty of them in one run of the test suite.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["Adam"]


BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which every kdlab model trains with
EPS = 1e-8


class Adam:
    """Adam(parameters, lr) with `zero_grad()` and `step()`, as a training loop calls torch.optim.Adam.

    Each parameter counts its own steps, and one without a gradient is skipped, as torch.optim.Adam does.
    The `_foreach_` operations run per tensor on the CPU and as fused multi-tensor kernels on a GPU."""

    def __init__(self, parameters: Iterable[torch.Tensor], lr: float = 1e-3):
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError("Adam got no parameters to optimize; pass model.parameters() of a model that has some")
        if not lr > 0:
            raise ValueError(f"Adam needs a learning rate lr > 0, got {lr}")
        self.lr = lr
        self.state: dict[torch.Tensor, dict] = {}  # parameter -> its step count and the two moving averages

    def zero_grad(self) -> None:
        """Drop the gradients (torch's default, set_to_none=True): the next backward pass writes fresh ones."""
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = BETAS
        parameters = [parameter for parameter in self.parameters if parameter.grad is not None]
        if not parameters:
            return
        states = [self.state.setdefault(parameter, {"step": 0, "exp_avg": torch.zeros_like(parameter),
                                                    "exp_avg_sq": torch.zeros_like(parameter)})
                  for parameter in parameters]
        grads = [parameter.grad for parameter in parameters]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        for state in states:
            state["step"] += 1
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        # the bias corrections in Python floats, as torch computes them from its float32 step count
        steps = [float(state["step"]) for state in states]
        step_sizes = [-(self.lr / (1 - beta1 ** step)) for step in steps]
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, [(1 - beta2 ** step) ** 0.5 for step in steps])
        torch._foreach_add_(denominators, EPS)
        torch._foreach_addcdiv_(parameters, exp_avgs, denominators, step_sizes)
