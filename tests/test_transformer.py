"""A slice of the real transformer workload through the simulated SoC on every sparse format."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from accelsmith.sw_driver import transformer
from accelsmith.sw_driver.accelerator import Accelerator

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def layers():
    try:
        return transformer.encoder_layer_gemms(16)
    except transformer.WorkloadError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("engine", list(transformer.ENGINES))
def test_layer_slice_is_bit_exact(layers, engine):
    acc = Accelerator.simulated(transformer.engine_config(engine), quiet=True)
    query, ffn_out = layers[0], layers[3]
    for layer in (query, ffn_out):
        row = transformer.run_layer(acc, layer, rows=12, tokens=10)
        assert row["bit_exact"], f"{layer.name} on {engine}"
    acc.close()
    # The post-GELU activations really are sparse after INT8 quantisation.
    _, B, _, _ = ffn_out.quantised()
    assert 0.2 < (B == 0).mean() < 0.8


def test_safetensors_reader_checks_lengths(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(transformer.WorkloadError, match="header length"):
        transformer.read_safetensors(bad, ["x"])
    header = b'{"x": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]}}'
    bad.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(transformer.WorkloadError, match="do not hold"):
        transformer.read_safetensors(bad, ["x"])
    header = b'{"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}'
    bad.write_bytes(struct.pack("<Q", len(header)) + header + np.arange(4, dtype="<f4").tobytes())
    assert transformer.read_safetensors(bad, ["x"])["x"].tolist() == [[0, 1], [2, 3]]
