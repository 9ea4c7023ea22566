#!/usr/bin/env python3
"""Runs cumlp's optimizer cases with torch.optim, in float64 and in float32.

usage: optimizers_torch.py CASES OUTPUT

CASES is a JSON file written by tests/test_optimizers_torch.c: {"n": N, "steps": S, "params": PATH,
"grads": PATH, "cases": [{"optimizer": "adamw", "learning_rate": ..., ...}, ...]}, the paths
naming raw little-endian float64 arrays: the N initial parameters, then S gradients of N values
each (all of them floats, so that both precisions start from the same values). For each case, in
order, OUTPUT receives the N parameters after S steps of the float64 run, then those of the
float32 run (as float64): 2 N doubles per case. Each step sets the gradient, clips it as the case
says (torch.nn.utils.clip_grad_norm_, then clip_grad_value_, as cumlp orders them) and steps.

NAdam: PyTorch 1.13 and earlier compute the second bias correction from mu_1 ... mu_t mu_t
mu_(t+1) (mu_t twice); PyTorch 2.0 fixed it (pytorch/pytorch#92699) to Dozat's mu_1 ... mu_(t+1),
which cumlp implements. On a torch with the old code, the NAdam cases run nadam_step below: the
single-tensor torch.optim.NAdam of that torch, line for line, with the fix. That it reproduces
torch.optim.NAdam bit for bit when the old product is put back is checked first, so the fix is the
only difference. Exits 77 when torch is missing, 1 when that check fails.
"""
import inspect
import json
import struct
import sys

try:
    import torch
except ImportError:
    print("skipped: torch is not installed for", sys.executable)
    sys.exit(77)


def read_doubles(path, count):
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == 8 * count, (path, len(data), count)
    return torch.tensor(struct.unpack("<%dd" % count, data), dtype=torch.float64)


NADAM_HAS_OLD_PRODUCT = "mu_product * mu * mu_next" in inspect.getsource(inspect.getmodule(torch.optim.NAdam))


class FixedNAdam:
    """torch 1.13's _single_tensor_nadam for one parameter, with the product fixed (or not)."""

    def __init__(self, param, c, old_product=False):
        self.p, self.c, self.old = param, c, old_product
        self.step_t = 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.mu_product = torch.tensor(1.0)  # the default dtype, as torch's state

    @torch.no_grad()
    def step(self):
        c, grad = self.c, self.p.grad
        beta1, beta2 = c["beta1"], c["beta2"]
        lr, eps, psi = c["learning_rate"], c["epsilon"], c["momentum_decay"]
        self.step_t += 1
        step = float(self.step_t)
        bias_correction2 = 1 - beta2 ** step
        if c["weight_decay"] != 0:
            grad = grad.add(self.p, alpha=c["weight_decay"])
        mu = beta1 * (1. - 0.5 * (0.96 ** (step * psi)))
        mu_next = beta1 * (1. - 0.5 * (0.96 ** ((step + 1) * psi)))
        self.mu_product *= mu
        mu_product_next = self.mu_product * (mu if self.old else 1.0) * mu_next
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = self.exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
        self.p.addcdiv_(grad, denom, value=-lr * (1. - mu) / (1. - self.mu_product.item()))
        self.p.addcdiv_(self.exp_avg, denom, value=-lr * mu_next / (1. - mu_product_next.item()))


def make_optimizer(c, p):
    name, lr, wd = c["optimizer"], c["learning_rate"], c["weight_decay"]
    betas, eps = (c["beta1"], c["beta2"]), c["epsilon"]
    o = torch.optim
    if name in ("sgd", "momentum", "nesterov"):
        mu = 0.0 if name == "sgd" else c["momentum"]
        return o.SGD([p], lr=lr, momentum=mu, weight_decay=wd, nesterov=name == "nesterov")
    if name == "adam":
        return o.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adamw":
        return o.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adamax":
        return o.Adamax([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "nadam":
        if NADAM_HAS_OLD_PRODUCT:
            return FixedNAdam(p, c)
        return o.NAdam([p], lr=lr, betas=betas, eps=eps, weight_decay=wd,
                       momentum_decay=c["momentum_decay"])
    if name == "rmsprop":
        return o.RMSprop([p], lr=lr, alpha=c["alpha"], eps=eps, weight_decay=wd,
                         momentum=c["momentum"], centered=bool(c["centered"]))
    if name == "adagrad":
        return o.Adagrad([p], lr=lr, lr_decay=c["lr_decay"], weight_decay=wd,
                         initial_accumulator_value=c["initial_accumulator_value"], eps=eps)
    if name == "adadelta":
        return o.Adadelta([p], lr=lr, rho=c["rho"], eps=eps, weight_decay=wd)
    raise SystemExit("unknown optimizer " + name)


def run(c, params, grads, dtype, make=make_optimizer):
    # State tensors made without a dtype (NAdam's mu_product, the step counts) take the default.
    torch.set_default_dtype(dtype)
    p = torch.nn.Parameter(params.to(dtype).clone())
    opt = make(c, p)
    for g in grads:
        p.grad = g.to(dtype).clone()
        if c.get("clip_norm", 0) > 0:
            torch.nn.utils.clip_grad_norm_([p], c["clip_norm"])
        if c.get("clip_value", 0) > 0:
            torch.nn.utils.clip_grad_value_([p], c["clip_value"])
        opt.step()
    torch.set_default_dtype(torch.float64)
    return p.detach().to(torch.float64)


def check_nadam_copy(params, grads):
    """FixedNAdam with the old product must be torch.optim.NAdam exactly."""
    c = {"optimizer": "nadam", "learning_rate": 2e-3, "beta1": 0.9, "beta2": 0.999,
         "epsilon": 1e-8, "weight_decay": 1e-2, "momentum_decay": 4e-3}
    theirs = run(dict(c, optimizer="nadam-torch"), params, grads, torch.float64,
                 lambda c, p: torch.optim.NAdam([p], lr=c["learning_rate"], weight_decay=1e-2))
    ours = run(c, params, grads, torch.float64, lambda c, p: FixedNAdam(p, c, old_product=True))
    if not torch.equal(theirs, ours):
        raise SystemExit("FixedNAdam with the old product differs from torch.optim.NAdam by %g"
                         % (theirs - ours).abs().max().item())
    print("torch %s: NAdam with the old product, checked: the NAdam cases use the fix"
          % torch.__version__)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    n, steps = spec["n"], spec["steps"]
    params = read_doubles(spec["params"], n)
    grads = read_doubles(spec["grads"], n * steps).reshape(steps, n)
    if NADAM_HAS_OLD_PRODUCT:
        check_nadam_copy(params, grads)
    with open(sys.argv[2], "wb") as out:
        for c in spec["cases"]:
            for dtype in (torch.float64, torch.float32):
                values = run(c, params, grads, dtype)
                out.write(struct.pack("<%dd" % n, *values.tolist()))
    print("torch %s: %d cases, %d steps, %d parameters" % (torch.__version__, len(spec["cases"]),
                                                         steps, n))


if __name__ == "__main__":
    main()
