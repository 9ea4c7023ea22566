#!/usr/bin/env python3
"""Checks that a cumlp checkpoint loads into PyTorch and computes what cumlp computed.

usage: interop_torch.py CHECKPOINT INPUTS OUTPUTS

CHECKPOINT is a cumlp safetensors file; INPUTS and OUTPUTS are raw little-endian float32 arrays,
one sample per row ([batch, n_in] and [batch, n_out]), the latter written by cumlp_forward from the
inputs scaled as the checkpoint's "scaler.offset" and "scaler.scale" say, when it has them. The
weights are the tensors whose names start with a digit (cumlp.h's documented filter). The
safetensors header is parsed here with struct and json only (the safetensors package, when
installed, is used as a second reader). Exits 0 on a match to 1e-5, 1 on a mismatch, 77 when
torch is missing.
"""
import json
import struct
import sys
import zlib

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: torch is not installed for", sys.executable)
    sys.exit(77)

TOLERANCE = 1e-5


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    payload = data[8 + header_len:]
    meta = header.pop("__metadata__")
    if meta["format_version"] == "1":  # the checksum covers the payload only
        crc, want = zlib.crc32(payload), meta["payload_crc32"]
    else:  # the whole file, with the checksum's own 8 digits as zeros
        key = b'"crc32":"'
        at = data.index(key, 8, 8 + header_len) + len(key)
        crc, want = zlib.crc32(data[:at] + b"00000000" + data[at + 8:]), meta["crc32"]
    if "%08x" % (crc & 0xFFFFFFFF) != want:
        raise SystemExit("CRC-32 %08x, header says %s" % (crc & 0xFFFFFFFF, want))
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", name
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(payload[begin:end]), dtype=torch.float32)
        tensors[name] = values.reshape(entry["shape"])
    return meta, tensors


def activation_module(name, slope):
    return {
        "identity": nn.Identity(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(slope),
        "gelu": nn.GELU(),  # exact erf form, as cumlp
        "softmax": nn.Softmax(dim=1),
    }[name]


def build_model(meta):
    widths = [int(w) for w in meta["widths"].split(",")]
    activations = meta["activations"].split(",")
    slope = float(meta["leaky_relu_slope"])
    modules = []
    for k, act in enumerate(activations):
        modules.append(nn.Linear(widths[k], widths[k + 1]))  # index 2k
        modules.append(activation_module(act, slope))  # index 2k + 1
    return nn.Sequential(*modules), widths


def read_matrix(path, cols):
    with open(path, "rb") as f:
        values = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    return values.reshape(-1, cols)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    meta, tensors = read_safetensors(sys.argv[1])
    model, widths = build_model(meta)
    weights = {k: v for k, v in tensors.items() if k[:1].isdigit()}
    model.load_state_dict(weights, strict=True)  # names and shapes must match exactly
    try:
        from safetensors.torch import load_file
        other = load_file(sys.argv[1])
        for name, value in tensors.items():
            assert torch.equal(other[name], value), name
        print("safetensors package agrees on", len(other), "tensors")
    except ImportError:
        pass
    x = read_matrix(sys.argv[2], widths[0])
    if "scaler.offset" in tensors:
        x = (x - tensors["scaler.offset"]) * tensors["scaler.scale"]
        print("inputs scaled by the checkpoint's scaler.offset and scaler.scale")
    want = read_matrix(sys.argv[3], widths[-1]).double()
    with torch.no_grad():
        got = model.double()(x.double())
    error = ((got - want).abs() / want.abs().clamp(min=1.0)).max().item()
    print("layers %s, activations %s, batch %d: max error %.3g (tolerance %g)"
          % (meta["widths"], meta["activations"], x.shape[0], error, TOLERANCE))
    sys.exit(0 if error <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
