#!/usr/bin/env python3
"""The two numbers before tuning: the FLOPs and the bytes one training step must move, and the
times they take at a device's rates (the floor is the larger of the two).

    python3 floors.py                          # the suite at the H100 rates below
    python3 floors.py --fp32 67 --tf32 495 --bf16 990 --gbs 3000 --layers 1024,4096,4096,4096,1024 \
        --batch 16384

A step is forward, softmax-CE loss, backward and SGD with momentum, in each precision: fp32 and
tf32 store 4-byte activations; bf16 and fp16 store the hidden activations, the deltas and a copy of
the weights and of the input in 2 bytes and the parameters, gradients, optimizer state and the
output layer in 4 (src/network.c). Three byte counts per step:
  floor     each input read once and each output written once: X, T, the parameters and the
            velocity read and written, each hidden activation written once and read once;
  cumlp     what cumlp's passes move as written today (src/network.c): every GEMM reads its two
            operands and writes its result once, the fused bias+activation pass reads P and writes
            A (and Z where kept), the loss pass, delta * f' per hidden layer, one optimizer pass;
  elemwise  the part of `cumlp` outside the GEMMs: what cuBLASLt epilogues or more fusion could
            remove. At the bandwidth below it predicts the step / GEMM ratio the benchmark prints.
Rates are leads to check against the device: the defaults are the H100 SXM datasheet fp32
(67 TFLOP/s, no tensor cores), dense TF32 (495 TFLOP/s) and dense bf16 and fp16 (990 TFLOP/s)
rates and about 3.0 TB/s, what a large device-to-device copy is reported to reach on an H100 80GB
HBM3 (bytes read plus written). A network whose working set fits in L2 (50 MB on the H100) is bound
by launch latency, not by these two numbers.
"""
import argparse
import sys

SUITE = {
    "S": ([784, 256, 128, 10], 256),
    "M": ([1024, 1024, 1024, 1024, 1024, 10], 4096),
    "L": ([1024, 4096, 4096, 4096, 1024], 16384),
}
FLOAT = 4  # bytes of the parameters, gradients, optimizer state and the output layer
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def flops(widths, batch):
    """6 B sum(n_in n_out): forward, dW and delta GEMMs, the count TFLOP/s is reported against
    (the benchmarks' convention, PyTorch's too), although nobody computes layer 0's delta."""
    return 6.0 * batch * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def executed_flops(widths, batch):
    """The GEMM FLOPs cumlp runs and cumlp-bench times alone: flops() less layer 0's delta."""
    return flops(widths, batch) - 2.0 * batch * widths[0] * widths[1]


def params(widths):
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def storage_bytes(precision):
    """Bytes of a hidden activation, a delta and the GEMMs' copies of W and X."""
    return 2 if precision in ("bf16", "fp16") else 4


def floor_bytes(widths, batch, precision):
    s = storage_bytes(precision)
    x, t = widths[0] * batch, widths[-1] * batch
    hidden = sum(w * batch for w in widths[1:-1])
    p = params(widths)
    # X and T read; params r+w, velocity r+w (and the weight copy written); A w+r
    return FLOAT * (x + t + 4 * p) + s * 2 * hidden + (s * p if s < FLOAT else 0)


def cumlp_bytes(widths, batch, precision):
    """(GEMM bytes, elementwise bytes) of cumlp's passes for a ReLU net with softmax-CE."""
    s = storage_bytes(precision)
    gemm = elem = 0
    layers = list(zip(widths[:-1], widths[1:]))
    last = len(layers) - 1
    if s < FLOAT:
        elem += (FLOAT + s) * widths[0] * batch  # X rounded into x16
    for l, (k, m) in enumerate(layers):
        out = FLOAT if l == last else s  # the output layer's product is fp32
        gemm += s * (m * k + k * batch) + out * m * batch  # P = W A_prev
        if l < last:
            elem += 2 * s * m * batch + FLOAT * m  # read P, b; write A in place (ReLU: no Z)
        else:
            elem += 3 * FLOAT * m * batch + FLOAT * m  # softmax: read P, write Z and A
    m = widths[-1]
    elem += (3 * FLOAT + s) * m * batch + FLOAT * m  # loss: read Z, A, T; write delta; db
    for l in range(last, -1, -1):
        k, m = layers[l]
        gemm += s * (m * batch + k * batch) + FLOAT * m * k  # dW = delta A_prev^T, dW fp32
        if l > 0:
            gemm += s * (m * k + m * batch + k * batch)  # G = W^T delta
            elem += 3 * s * k * batch + FLOAT * k  # delta_below = G * f'(A): read G, A; write
    # optimizer: read param, grad, velocity; write param, velocity (and the 16-bit copy)
    elem += 5 * FLOAT * params(widths) + (s * params(widths) if s < FLOAT else 0)
    return gemm, elem


def row(name, widths, batch, args):
    f, fx = flops(widths, batch), executed_flops(widths, batch)
    bw = args.gbs * 1e9
    out = []
    for precision in PRECISIONS:
        tflops = {"fp32": args.fp32, "tf32": args.tf32, "bf16": args.bf16, "fp16": args.bf16}[
            precision]
        fb = floor_bytes(widths, batch, precision)
        gb, eb = cumlp_bytes(widths, batch, precision)
        elem_ms = eb / bw * 1e3
        gemm_ms = max(fx / (tflops * 1e12), gb / bw) * 1e3
        floor_ms = max(fx / (tflops * 1e12), fb / bw) * 1e3
        step_ms = gemm_ms + elem_ms
        out.append("%-4s %-4s %9.3g %9.1f %9.1f %9.1f %9.4f %9.4f %9.4f %7.3f %8.0f" % (
            name, precision, f / 1e9, fb / 1e6, gb / 1e6, eb / 1e6, floor_ms, gemm_ms, elem_ms,
            step_ms / gemm_ms, f / (step_ms * 1e-3) / 1e12))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fp32", type=float, default=67.0, help="fp32 TFLOP/s (default 67)")
    p.add_argument("--tf32", type=float, default=495.0, help="TF32 TFLOP/s (default 495)")
    p.add_argument("--bf16", type=float, default=990.0,
                   help="dense bf16 and fp16 TFLOP/s (default 990)")
    p.add_argument("--gbs", type=float, default=3000.0, help="memory GB/s (default 3000)")
    p.add_argument("--layers", default=None, help="widths, e.g. 784,256,10 (default: the suite)")
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    if args.layers:
        nets = {"net": ([int(w) for w in args.layers.split(",")], args.batch)}
    else:
        nets = SUITE
    print("rates: fp32 %g TFLOP/s, TF32 %g TFLOP/s, bf16 and fp16 %g TFLOP/s, memory %g GB/s" % (
        args.fp32, args.tf32, args.bf16, args.gbs))
    print("%-4s %-4s %9s %9s %9s %9s %9s %9s %9s %7s %8s" % (
        "net", "prec", "GFLOP", "floor MB", "GEMM MB", "elem MB", "floor ms", "GEMM ms",
        "elem ms", "step/GEMM", "TFLOP/s"))
    for name, (widths, batch) in nets.items():
        for line in row(name, widths, batch, args):
            print(line)
    print("GFLOP: 6 B sum(n_in n_out), as TFLOP/s is reported; the times use the GEMMs cumlp runs "
          "(without layer 0's delta). GEMM ms = max(FLOPs / rate, GEMM bytes / bandwidth); elem ms "
          "= elementwise bytes / bandwidth; step/GEMM = (GEMM ms + elem ms) / GEMM ms, the ratio "
          "cumlp-bench reports; TFLOP/s = GFLOP / (GEMM ms + elem ms), at the GEMMs' peak rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
