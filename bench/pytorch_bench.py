#!/usr/bin/env python3
"""The cumlp benchmark's networks in PyTorch, timed the same way, written in the same JSON schema.

Each timed step is zero_grad, forward, loss, backward and optimizer step (SGD, momentum 0.9,
learning rate 0.01), followed by a device synchronize, timed with the host's monotonic clock
after a warm-up. Variants: eager (per-parameter optimizer loop), foreach (multi-tensor optimizer),
fused (fused optimizer, where this PyTorch has it) and, with a GPU, cuda-graph (the whole step
captured once and replayed), compile (torch.compile, PyTorch 2 and later, default mode) and, when
asked for with --variants, compile-ro (torch.compile's mode="reduce-overhead", which replays the
compiled forward and backward as CUDA graphs; each configuration compiles for tens of seconds).

Precisions (--precision, as cumlp's): fp32, tf32 (allow_tf32) and, on a GPU, bf16 and fp16 as
PyTorch's automatic mixed precision runs them: the step under torch.autocast (fp32 parameters and
optimizer, 16-bit GEMM inputs; autocast runs the softmax cross-entropy in fp32), fp16 with a
GradScaler (PyTorch's defaults: 2^16, growth 2 after 2000 steps, backoff 0.5, which cumlp's loss
scaler copies). The GEMMs timed alone run in the precision's dtype. No cuda-graph variant in fp16:
GradScaler's step reads its overflow flag on the host.

    python3 pytorch_bench.py --suite all --threads 2 --json out.json

With --init-dir DIR (the folder cumlp-bench --save-init wrote), each network starts from cumlp's
initial parameters, DIR/<config>.safetensors, loaded into the nn.Sequential with strict=True;
without it, or where the file is missing, from PyTorch's default initialization. The JSON says
which ("init").
"""
import argparse
import contextlib
import datetime
import inspect
import json
import os
import platform
import resource
import socket
import statistics
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit("pytorch_bench.py: PyTorch is not importable by %s" % sys.executable)

SUITE = {
    "S": ([784, 256, 128, 10], 256),
    "M": ([1024, 1024, 1024, 1024, 1024, 10], 4096),
    "L": ([1024, 4096, 4096, 4096, 1024], 16384),
}
ACTIVATIONS = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
}
LEARNING_RATE = 0.01


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="784,256,128,10")
    p.add_argument("--act", default="relu", choices=sorted(ACTIVATIONS))
    p.add_argument("--loss", default="ce", choices=["ce", "bce", "mse"])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=0,
                   help="timed steps (0: as many as fit in --seconds, 10 to 200)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="the time the automatic step count aims at per configuration")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="all", help="cpu, cuda or all (cuda when available)")
    p.add_argument("--precision", default=None,
                   help="fp32, tf32, bf16, fp16, a list such as fp32,bf16, or all (suite: all four "
                        "on cuda; bf16 and fp16 only there)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--suite", default=None, help="S, M, L or all")
    p.add_argument("--variants", default="eager,foreach,fused,cuda-graph,compile")
    p.add_argument("--json", default=None)
    p.add_argument("--commit", default="")
    p.add_argument("--init-dir", default=None,
                   help="start from the cumlp checkpoints <dir>/<config>.safetensors")
    return p.parse_args()


PRECISIONS = ["fp32", "tf32", "bf16", "fp16"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configs(args):
    """(name, widths, batch, device, precision) for every configuration to run."""
    devices = ["cpu", "cuda"] if args.device == "all" else args.device.split(",")
    devices = [d for d in devices if d != "cuda" or torch.cuda.is_available()]
    if args.suite:
        names = list(SUITE) if args.suite == "all" else [args.suite]
        nets = [(n, SUITE[n][0], SUITE[n][1]) for n in names]
    else:
        nets = [("custom", [int(w) for w in args.layers.split(",")], args.batch)]
    out = []
    for name, widths, batch in nets:
        for device in devices:
            if args.suite and name == "L" and device != "cuda":
                continue  # L is GPU only
            if args.precision == "all" or (args.precision is None and args.suite):
                wanted = PRECISIONS
            else:
                wanted = (args.precision or "fp32").split(",")
            for p in wanted:
                if p not in PRECISIONS:
                    sys.exit("pytorch_bench.py: --precision: unknown precision '%s' (%s)" %
                             (p, ", ".join(PRECISIONS)))
            if device != "cuda":
                wanted = [p for p in wanted if p == "fp32"]  # as cumlp-bench: cpu runs fp32
            out += [(name, widths, batch, device, p) for p in wanted]
    return out


def make_model(widths, act, device):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[act]())
    return nn.Sequential(*layers).to(device)


def read_cumlp_parameters(path):
    """The tensors of a cumlp safetensors checkpoint ("0.weight" [out, in], "0.bias", "2.weight",
    ... as nn.Sequential names them), as a state dict. Only the parameters: metadata and any
    optimizer state ("optimizer." names) are left out."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    payload = data[8 + header_len:]
    state = {}
    for name, entry in header.items():
        if name == "__metadata__" or name.startswith("optimizer."):
            continue
        if not name.endswith((".weight", ".bias")):
            continue
        if entry["dtype"] != "F32":
            raise ValueError("%s: %s is %s, not F32" % (path, name, entry["dtype"]))
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(payload[begin:end]), dtype=torch.float32)
        state[name] = values.reshape(entry["shape"])
    return state


def initial_parameters(args, name):
    """(state dict or None, description) for the network named `name`."""
    path = os.path.join(args.init_dir, name + ".safetensors") if args.init_dir else None
    if not path or not os.path.exists(path):
        return None, "pytorch-default"
    return read_cumlp_parameters(path), "cumlp-checkpoint"


def make_loss(name, batch):
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "bce":
        return nn.BCEWithLogitsLoss(reduction="sum")  # cumlp: sum over outputs, batch mean below
    return nn.MSELoss(reduction="sum")


def make_batch(widths, batch, loss, device):
    gen = torch.Generator().manual_seed(12345)
    x = torch.rand(batch, widths[0], generator=gen) * 2 - 1
    n_out = widths[-1]
    if loss == "ce":
        y = torch.tensor([(j * 7919) % n_out for j in range(batch)])
    else:
        y = torch.zeros(batch, n_out)
        y[torch.arange(batch), torch.tensor([(j * 7919) % n_out for j in range(batch)])] = 1
    return x.to(device), y.to(device)


def optimizer_kwargs(variant):
    """SGD keyword arguments for a variant, or None when this PyTorch lacks it."""
    params = inspect.signature(torch.optim.SGD).parameters
    kw = {"lr": LEARNING_RATE, "momentum": 0.9}
    if variant in ("eager",):
        if "foreach" in params:
            kw["foreach"] = False
    elif variant == "foreach":
        if "foreach" not in params:
            return None
        kw["foreach"] = True
    elif variant == "fused":
        if "fused" not in params:
            return None
        kw["fused"] = True
    return kw


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


class Step:
    """One training step for a variant; __call__ runs it."""

    def __init__(self, variant, widths, act, loss, batch, device, precision, init_state=None):
        self.device = device
        self.dtype = DTYPES.get(precision)  # None: no autocast
        if precision == "fp16" and variant == "cuda-graph":
            raise NotImplementedError("fp16's GradScaler reads its overflow flag on the host")
        # A graph replays the casts it captured: autocast's cache of cast weights must be off.
        self.autocast_cache = variant != "cuda-graph"
        self.scaler = None
        if precision == "fp16":
            amp = getattr(torch, "amp", None)
            if amp is not None and hasattr(amp, "GradScaler"):
                self.scaler = amp.GradScaler("cuda")
            else:
                self.scaler = torch.cuda.amp.GradScaler()
        self.model = make_model(widths, act, device)
        if init_state is not None:
            self.model.load_state_dict(init_state, strict=True)
        base = "foreach" if variant in ("cuda-graph", "compile", "compile-ro") else variant
        kw = optimizer_kwargs(base)
        if kw is None:
            raise NotImplementedError("SGD(%s=True) is not in PyTorch %s" % (base, torch.__version__))
        if variant == "cuda-graph" and "capturable" in inspect.signature(torch.optim.SGD).parameters:
            kw["capturable"] = True
        self.opt = torch.optim.SGD(self.model.parameters(), **kw)
        self.loss_fn = make_loss(loss, batch)
        self.scale = 1.0 if loss == "ce" else (0.5 / batch if loss == "mse" else 1.0 / batch)
        self.x, self.y = make_batch(widths, batch, loss, device)
        self.forward = self.model
        if variant in ("compile", "compile-ro"):
            if not hasattr(torch, "compile"):
                raise NotImplementedError("torch.compile needs PyTorch 2")
            mode = "reduce-overhead" if variant == "compile-ro" else "default"
            self.forward = torch.compile(self.model, mode=mode)
        self.graph = None
        if variant == "cuda-graph":
            self._capture()

    def _loss(self):
        """The forward pass and the loss, under autocast in bf16 and fp16."""
        context = contextlib.nullcontext()
        if self.dtype is not None:
            context = torch.autocast(device_type=self.device, dtype=self.dtype,
                                     cache_enabled=self.autocast_cache)
        with context:
            out = self.forward(self.x)
            return self.loss_fn(out, self.y) * self.scale

    def _backward_step(self, loss):
        if self.scaler is None:
            loss.backward()
            self.opt.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()

    def _eager(self):
        self.opt.zero_grad(set_to_none=self.graph is None)
        self._backward_step(self._loss())

    def _capture(self):
        # Warm up on a side stream (as the CUDA-graph recipe requires), then capture one step.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.opt.zero_grad(set_to_none=False)
                self._eager_keep_grads()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=False)
        with torch.cuda.graph(self.graph):
            self._eager_keep_grads()

    def _eager_keep_grads(self):
        self._backward_step(self._loss())

    def __call__(self):
        if self.graph is not None:
            self.graph.replay()
        else:
            self._eager()


def time_steps(step, device, warmup, steps, seconds):
    start = time.perf_counter()
    for _ in range(max(warmup, 1 if steps == 0 else 0)):
        step()
    sync(device)
    if steps == 0:
        per = (time.perf_counter() - start) * 1e3 / max(warmup, 1)
        steps = int(min(200, max(10, seconds * 1e3 / max(per, 1e-3))))
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        ms.append((time.perf_counter() - t0) * 1e3)
    return sorted(ms), steps


def quantile(sorted_ms, q):
    pos = q * (len(sorted_ms) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (pos - lo) * (sorted_ms[hi] - sorted_ms[lo])


def time_gemms(widths, batch, device, reps, dtype=None):
    """The step's GEMMs alone (forward, dW and, except for the first layer, the delta below), in
    dtype (bf16 or fp16: what autocast runs them in) or fp32."""
    gen = torch.Generator().manual_seed(1)
    mats = []
    for k, m in zip(widths[:-1], widths[1:]):
        w = (torch.rand(m, k, generator=gen) - 0.5).to(device, dtype or torch.float32)
        a = (torch.rand(batch, k, generator=gen) - 0.5).to(device, dtype or torch.float32)
        d = (torch.rand(batch, m, generator=gen) - 0.5).to(device, dtype or torch.float32)
        mats.append((w, a, d))

    def one_pass():
        for i, (w, a, d) in enumerate(mats):
            torch.mm(a, w.t())
            torch.mm(d.t(), a)
            if i > 0:
                torch.mm(d, w)
        sync(device)

    one_pass()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one_pass()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms)


def device_description(device):
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        return "PyTorch %s, %s, %.0f MiB" % (torch.__version__, p.name, p.total_memory / 2**20)
    return "PyTorch %s, CPU %s, %d threads" % (torch.__version__, platform.processor() or platform.machine(),
                                              torch.get_num_threads())


def run(args, cfg, variant, stamp):
    name, widths, batch, device, precision = cfg
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.cuda.reset_peak_memory_stats()
        base_bytes = torch.cuda.memory_allocated()  # left by earlier runs; not this one's
    init_state, init = initial_parameters(args, name)
    step = Step(variant, widths, args.act if not args.suite else "relu",
                args.loss if not args.suite else "ce", batch, device, precision, init_state)
    ms, steps = time_steps(step, device, args.warmup, args.steps, args.seconds)
    # The training step's peak (tensors allocated), before the GEMM timing allocates its own.
    peak_device_mb = None
    if device == "cuda":
        peak_device_mb = (torch.cuda.max_memory_allocated() - base_bytes) / 2**20
    gemm_ms = time_gemms(widths, batch, device, max(10, min(steps, 50)), DTYPES.get(precision))
    flops = 6.0 * batch * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    median = quantile(ms, 0.5)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "tool": "pytorch", "variant": variant, "date": stamp, "host": socket.gethostname(),
        "commit": args.commit, "optimizer": "sgd-momentum-0.9", "learning_rate": LEARNING_RATE,
        "warmup": args.warmup, "init": init, "config": name, "backend": device,
        "precision": precision, "layers": widths,
        "activation": "relu" if args.suite else args.act,
        "loss": "ce" if args.suite else args.loss, "batch": batch,
        "device": device_description(device), "steps": steps,
        "threads": torch.get_num_threads() if device == "cpu" else 1,
        "ms_per_step": {"median": median, "min": ms[0], "p10": quantile(ms, 0.1),
                        "p90": quantile(ms, 0.9), "max": ms[-1]},
        "samples_per_s": batch / (median * 1e-3), "flops_per_step": flops,
        "tflops": flops / (median * 1e-3) / 1e12, "gemm_ms": gemm_ms,
        "gemm_tflops": flops / (gemm_ms * 1e-3) / 1e12,
        "step_to_gemm_ratio": median / gemm_ms, "peak_host_rss_mb": rss,
        "peak_device_mb": peak_device_mb,
    }


def main():
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = []
    print("%-7s %-5s %-4s %3s %-10s %10s %11s %8s %9s %9s %6s" % (
        "config", "dev", "prec", "thr", "variant", "ms/step", "samples/s", "TFLOP/s", "GEMM ms",
        "GEMM TF/s", "ratio"))
    for cfg in configs(args):
        for variant in args.variants.split(","):
            if variant in ("cuda-graph", "compile", "compile-ro") and cfg[3] != "cuda":
                continue
            try:
                r = run(args, cfg, variant, stamp)
            except (NotImplementedError, RuntimeError, ValueError, OSError) as e:
                print("%-7s %-5s %-4s     %-10s skipped: %s" % (cfg[0], cfg[3], cfg[4], variant,
                                                             str(e).splitlines()[0][:80]))
                continue
            results.append(r)
            print("%-7s %-5s %-4s %3d %-10s %10.3f %11.0f %8.3f %9.3f %9.3f %6.2f" % (
                r["config"], r["backend"], r["precision"], r["threads"], variant,
                r["ms_per_step"]["median"], r["samples_per_s"], r["tflops"], r["gemm_ms"],
                r["gemm_tflops"], r["step_to_gemm_ratio"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
