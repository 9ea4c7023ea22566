#!/usr/bin/env python3
"""Side-by-side table of cumlp and PyTorch benchmark results (JSON from cumlp-bench and
pytorch_bench.py).

    python3 compare.py results/<run>/cumlp.json results/<run>/pytorch.json

One row per cumlp configuration (network, backend, precision, GEMM-epilogue setting, CUDA graph or
not, threads) with its median ms/step,
its rate in TFLOP/s and the share of it its GEMMs take, then for each PyTorch variant measured on
the same network, device, precision and thread count (bf16 and fp16: PyTorch's autocast): its
ms/step and the speed ratio PyTorch time / cumlp time (above 1.0: cumlp is faster). Results
written before "precision" replaced "math" read as their math mode.
"""
import json
import sys

DEVICE_OF_BACKEND = {"cpu": "cpu", "reference": "cpu", "cuda": "cuda"}


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        rows += data if isinstance(data, list) else [data]
    return rows


def precision(row):
    return row.get("precision", row.get("math", "fp32"))


def key(row, device):
    threads = row.get("threads", 1) if device == "cpu" else 1
    return (row["config"], tuple(row["layers"]), row["batch"], device, precision(row), threads)


def table(rows):
    torch_rows = {}
    variants = []
    for r in rows:
        if r.get("tool") != "pytorch":
            continue
        torch_rows.setdefault(key(r, r["backend"]), {})[r["variant"]] = r
        if r["variant"] not in variants:
            variants.append(r["variant"])
    head = "%-7s %-9s %-4s %-4s %-5s %3s %10s %8s %7s" % (
        "config", "backend", "prec", "epi", "graph", "thr", "cumlp ms", "TFLOP/s", "GEMM%")
    for v in variants:
        head += " %12s %7s" % (v + " ms", "ratio")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("tool") != "cumlp":
            continue
        device = DEVICE_OF_BACKEND.get(r["backend"], r["backend"])
        ms = r["ms_per_step"]["median"]
        gemm_share = 100.0 * r["gemm_ms"] / ms if ms > 0 else float("nan")
        line = "%-7s %-9s %-4s %-4s %-5s %3d %10.3f %8.2f %6.0f%%" % (
            r["config"], r["backend"], precision(r), r.get("epilogues", "off"),
            r.get("graph", "off"), r.get("threads", 1), ms, r.get("tflops", 0), gemm_share)
        matches = torch_rows.get(key(r, device), {})
        for v in variants:
            t = matches.get(v)
            if t is None:
                line += " %12s %7s" % ("-", "-")
            else:
                tms = t["ms_per_step"]["median"]
                line += " %12.3f %6.2fx" % (tms, tms / ms)
        lines.append(line)
    lines.append("ratio = PyTorch ms / cumlp ms (above 1: cumlp faster); GEMM% = the step's GEMMs "
                 "timed alone, as a share of the cumlp step")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    print(table(load(argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
