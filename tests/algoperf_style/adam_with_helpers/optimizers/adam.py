"""Adam with decoupled weight decay, written out by hand: the kind of optimizer a submission ships beside
its ``submission.py``."""

import torch


class HandwrittenAdamW(torch.optim.Optimizer):
    def __init__(
        self, params, lr: float, betas: tuple[float, float], eps: float, weight_decay: float
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"], state["m"], state["v"] = (
                        0,
                        torch.zeros_like(param),
                        torch.zeros_like(param),
                    )
                state["step"] += 1
                state["m"].mul_(beta1).add_(param.grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** state["step"])
                v_hat = state["v"] / (1 - beta2 ** state["step"])
                param.mul_(1 - group["lr"] * group["weight_decay"])
                param.addcdiv_(m_hat, v_hat.sqrt().add_(group["eps"]), value=-group["lr"])
