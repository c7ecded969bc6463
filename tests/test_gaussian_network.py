"""The sorter network's mode (``SorterNetwork``) against ``mlp_fixed`` in Amaranth's simulator:
trained and random networks, every parameter range the hardware takes, backpressure; networks
it cannot take refused with a clear error; a deliberately wrong network caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from amaranth import Elaboratable, Module
from amaranth.sim import Simulator

from accelsmith.hdl.gaussian import NET_SLOTS, SorterNetwork
from accelsmith.models.gaussian import fixed, records
from accelsmith.models.gaussian.hardware import RasteriserTiming
from accelsmith.models.gaussian.sorter import SorterMLP

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


class _Bench(Elaboratable):
    """The network with its borrowed multipliers as plain products (the lanes' role)."""

    def __init__(self, net):
        self.net = net

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.d.comb += [net.mul_p[s].eq(net.mul_x[s] * net.mul_y[s]) for s in range(NET_SLOTS)]
        return m


def _run(net, q, x, stall=0.0, seed=0):
    """Weights for features ``x`` and the cycles ``busy`` was high."""
    rng = np.random.default_rng(seed)
    sim = Simulator(_Bench(net))
    sim.add_clock(1e-6)
    out = {"weights": [], "busy": 0}

    async def bench(ctx):
        ctx.set(net.params.as_value(), records.net_params(q))
        sent = 0
        for _ in range(40 * len(x) + 100):
            offer = sent < len(x) and rng.random() >= stall
            ctx.set(net.features.valid, int(offer))
            if offer:
                for k in range(5):
                    ctx.set(net.features.payload[k], int(x[sent, k]))
            ctx.set(net.weights.ready, int(rng.random() >= stall))
            taken = offer and ctx.get(net.features.ready)
            got = ctx.get(net.weights.valid) and ctx.get(net.weights.ready)
            weight = ctx.get(net.weights.payload)
            out["busy"] += ctx.get(net.busy)
            await ctx.tick()
            sent += int(bool(taken))
            if got:
                out["weights"].append(weight)
            if len(out["weights"]) == len(x):
                break

    sim.add_testbench(bench)
    sim.run()
    return np.array(out["weights"]), out["busy"]


def _random_net(rng, fracs):
    sizes = records.NET_SIZES
    w = [rng.integers(-128, 128, (i, o)) for i, o in zip(sizes, sizes[1:])]
    b = [rng.integers(-(1 << 31), 1 << 31, o) for o in sizes[1:]]
    return fixed.QuantMLP(w, list(fracs), b, 0.125, 8)


def _features(rng, n):
    x = rng.integers(-(1 << 15), 1 << 15, (n, 5))
    x[rng.random(x.shape) < 0.2] = -(1 << 15)
    x[rng.random(x.shape) < 0.1] = (1 << 15) - 1
    return x


@pytest.mark.parametrize("name", ["coverage", "authors"])
def test_trained_sorter_is_bit_exact_with_exact_cycles(name):
    q = fixed.quantise_mlp(SorterMLP.load(RESULTS / f"gaussian_sorter_{name}_mlp.npz"))
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(-600, 600, (60, 5)), _features(rng, 20)])
    got, busy = _run(SorterNetwork(), q, x)
    assert np.array_equal(got, fixed.mlp_fixed(q, x))
    assert busy == RasteriserTiming.network_cycles(len(x))


@pytest.mark.parametrize("fracs", [(0, 0, 0), (24, 24, 24), (3, 17, 9)])
def test_random_networks_at_the_ends_of_the_ranges_with_stalls(fracs):
    rng = np.random.default_rng(sum(fracs))
    q = _random_net(rng, fracs)
    x = _features(rng, 60)
    got, _ = _run(SorterNetwork(), q, x, stall=0.4, seed=sum(fracs))
    assert np.array_equal(got, fixed.mlp_fixed(q, x))


def test_a_network_without_its_leaky_relu_is_caught(monkeypatch):
    """A network whose hidden layers pass negative sums unscaled must not match."""
    import accelsmith.hdl.gaussian as g

    q = fixed.quantise_mlp(SorterMLP.load(RESULTS / "gaussian_sorter_coverage_mlp.npz"))
    x = np.random.default_rng(5).integers(-600, 600, (40, 5))
    monkeypatch.setattr(g, "LEAKY_SHIFT", 0)
    got, _ = _run(SorterNetwork(), q, x)
    assert not np.array_equal(got, fixed.mlp_fixed(q, x))


@pytest.mark.parametrize("change, pattern", [
    (lambda q: q.w.__setitem__(0, np.zeros((5, 9), np.int64)), "the network is 5-9-4-1"),
    (lambda q: setattr(q, "bits", 10), "10-bit; the hardware takes 8-bit"),
    (lambda q: q.w_frac.__setitem__(1, 25), r"layer 1: weight scale 2\^25"),
    (lambda q: q.w_frac.__setitem__(0, -1), r"layer 0: weight scale 2\^-1"),
    (lambda q: q.b[2].__setitem__(0, 1 << 40), "layer 2: a bias does not fit 32 bits"),
], ids=["shape", "bits", "scale-high", "scale-negative", "bias"])
def test_networks_the_hardware_cannot_run_are_refused(change, pattern):
    q = fixed.quantise_mlp(SorterMLP.load(RESULTS / "gaussian_sorter_coverage_mlp.npz"))
    change(q)
    with pytest.raises(records.NetworkError, match=pattern):
        records.net_params(q)
