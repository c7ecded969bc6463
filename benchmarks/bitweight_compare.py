"""Bit-weight optimisations against their baselines: area, timing, area efficiency, digit sparsity.

Usage: python benchmarks/bitweight_compare.py [SWEEP] [--workers N] [--scheduler ADDRESS] [-o DIR]

SWEEP (default ``sweeps/bitweight.yaml``) names the designs and targets: ``sweeps/bitweight*.yaml``
hold the published comparisons (standard: 16x16 systolic OS/WS and 2D-Matrix, 16 dot products of
K=16, 8x8x8 cube; ``bitweight_small``: half of each edge; their ``report: {size: ...}`` names the
preset, which the points' sizes must match). Every point is synthesised by ``accelsmith sweep``'s
engine (Dask; results cached under ``build/sweeps/NAME``, so a repeated or interrupted run
recomputes nothing it has, and a change to accelsmith or a tool recomputes what it touches).
Area efficiency = MACs per cycle x clock / area, as a ratio to the same architecture's baseline.
MACs per cycle of the digit-serial engines are measured with the cycle model on GEMM data drawn
from a normal distribution (sigma 30, INT8), so they are effective, not peak, rates.

FPGA rows of pipelined engines (``mac@pN``; ``@pN-ecp5``: the baseline's multipliers as ECP5
DSP blocks with their registers) are compared with the pipelined baseline of their architecture.
A with-DSP row whose Yosys netlist equals the LUT-only one (a core without multipliers) is marked.

Also: average non-zero digits per INT8 operand (normal data, sigma 10..50, Booth and EN-T) and
the cycles of a 256x256x256 GEMM on that data for the 2D-Matrix engines.
Writes docs/results/NAME.{json,md} (NAME: the sweep's ``name``); progress on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import (load_benchmark_sweep, machine, progress, run_benchmark_sweep, sweep_arguments,
                     sweep_command, synth_rows, synthesised_points, without_excluded, write)

from accelsmith.config import validate
from accelsmith.generators.bitweight import MACS_BY_ARCHITECTURE, build
from accelsmith.models.bitweight import DIGIT_SERIAL, EngineGeometry
from accelsmith.models.digits import nonzero_digits
from accelsmith.models.intformat import IntFormat

S8 = IntFormat(8, True)
SIZES = {
    "standard": {"systolic_os": {"rows": 16, "cols": 16},
                 "systolic_ws": {"rows": 16, "cols": 16, "m_tile": 16},
                 "matrix2d": {"rows": 16, "cols": 16},
                 "tree": {"units": 16, "tree_k": 16, "m_tile": 16},
                 "cube": {"cube_n": 8}},
    "small": {"systolic_os": {"rows": 8, "cols": 8},
              "systolic_ws": {"rows": 8, "cols": 8, "m_tile": 8},
              "matrix2d": {"rows": 8, "cols": 8},
              "tree": {"units": 8, "tree_k": 8, "m_tile": 8},
              "cube": {"cube_n": 4}},
}
PAPER = {"systolic_os": 1.27, "systolic_ws": 1.27, "cube": 1.28, "tree": 1.56, "matrix2d": 1.44}
SIGMAS = (10, 20, 30, 40, 50)
WORKLOAD_SIGMA = 30


def normal_int8(sigma, shape, rng):
    return np.clip(np.rint(rng.normal(0, sigma, shape)), S8.min, S8.max).astype(np.int64)


OUTPUT_STATIONARY = ("systolic_os", "matrix2d", "cube")


def pipelined_baseline(arch, target):
    """The pipelined baseline a pipelined row of ``arch`` is compared with: output-stationary
    ones at ``@p3`` (on ECP5 ``@p3-ecp5``: DSP blocks with their registers), the tree at ``@p1``
    (on ECP5 ``@p2-ecp5``), weight-stationary ones at ``@p1``."""
    dsp = "-ecp5" if target == "ecp5-85f" else ""
    if arch == "tree":
        return f"baseline@p2{dsp}" if dsp else "baseline@p1"
    return f"baseline@p3{dsp}" if arch in OUTPUT_STATIONARY else "baseline@p1"


def config_of(arch, mac, size):
    return validate({"family": "bitweight", "architecture": arch, "mac": mac, "max_k": 256,
                     **SIZES[size][arch]}, f"<{arch}/{mac}>")


def mac_label(values: dict) -> str:
    """A design's row name: ``mac``, ``mac/compressor`` for a carry-save tree other than
    Dadda's, then ``@pN`` (pipeline stages) or ``@pN-ecp5`` (and ECP5 DSP blocks)."""
    label = values["mac"]
    if values.get("compressor") not in (None, "dadda"):
        label += f"/{values['compressor']}"
    if values.get("pipeline"):
        label += f"@p{values['pipeline']}" + ("-ecp5" if values.get("dsp") == "ecp5" else "")
    return label


def gemm_cycles(g: EngineGeometry, A, B) -> int:
    """Stall-free cycles of the whole GEMM, tile job after tile job."""
    total = 0
    for i in range(0, A.shape[0], g.m_tile):
        for j in range(0, B.shape[1], g.n_tile):
            total += g.job_cycles_for(A[i:i + g.m_tile], B[:, j:j + g.n_tile])
    return total


def macs_per_cycle(g: EngineGeometry, rng) -> tuple[float, str]:
    """Sustained MACs per cycle inside a job (pipeline fill and readout excluded)."""
    if g.schedule == "fixed":
        return float(g.macs_per_cycle()), "peak while operands stream"
    k = 256
    A = normal_int8(WORKLOAD_SIGMA, (g.m_tile, k), rng)
    B = normal_int8(WORKLOAD_SIGMA, (k, g.n_tile), rng)
    cycles = g.job_cycles_for(A, B) - g.job_cycles_for(A[:, :0], B[:0])
    return g.m_tile * g.n_tile * k / cycles, f"effective on normal data, sigma {WORKLOAD_SIGMA}"


def _mark_same_netlists(rows: list[dict]) -> None:
    """A with-DSP row whose netlist is its LUT-only twin's (no multipliers for DSPs to take)."""
    digest = {(r["architecture"], r["mac"]): r.get("netlist_sha256") for r in rows
              if r["target"] == "ecp5-85f-nodsp"}
    for r in rows:
        if (r["target"] == "ecp5-85f" and "@" not in r["mac"] and r.get("dsps") == 0
                and r.get("netlist_sha256") and digest.get((r["architecture"], r["mac"])) == r["netlist_sha256"]):
            r["same_netlist_as"] = "ecp5-85f-nodsp"


def digit_statistics(rng) -> list[dict]:
    rows = []
    for sigma in SIGMAS:
        x = normal_int8(sigma, 200_000, rng)
        rows.append({"sigma": sigma,
                     "booth": round(float(nonzero_digits(x, S8, "booth").mean()), 3),
                     "ent": round(float(nonzero_digits(x, S8, "ent").mean()), 3)})
    return rows


def gemm_cycle_table(size, rng) -> list[dict]:
    n = 256
    rows = []
    geoms = {mac: EngineGeometry.from_manifest(build(config_of("matrix2d", mac, size)).manifest)
             for mac in MACS_BY_ARCHITECTURE["matrix2d"] if mac in DIGIT_SERIAL or mac == "baseline"}
    for sigma in SIGMAS:
        A, B = normal_int8(sigma, (n, n), rng), normal_int8(sigma, (n, n), rng)
        row = {"sigma": sigma}
        for mac, g in geoms.items():
            progress(f"GEMM {n}^3 cycles, sigma {sigma}, matrix2d/{mac}")
            row[mac] = gemm_cycles(g, A, B)
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_arguments(parser, "bitweight.yaml")
    args = parser.parse_args()
    sweep = load_benchmark_sweep(args.sweep)
    size = sweep.report.get("size")
    if size not in SIZES:
        raise SystemExit(f"error: {args.sweep}: report.size = {size!r}; allowed: {', '.join(SIZES)}")
    points = [p for p in sweep.points if not (p.filtered or "").startswith("rejected")]
    for p in points:
        arch = p.axes.get("architecture", sweep.base.get("architecture"))
        wrong = {k: p.values[k] for k, v in SIZES[size][arch].items() if p.values and p.values[k] != v}
        if wrong:
            raise SystemExit(f"error: {args.sweep}: point {p.name()} has {wrong}; report.size "
                             f"{size!r} says {SIZES[size][arch]} for {arch}")
    rng = np.random.default_rng(2025)
    data = {"title": "Bit-weight optimisations vs baselines", "machine": machine(),
            "name": sweep.name or Path(args.sweep).stem, "size": size, "workload_sigma": WORKLOAD_SIGMA, "digits": digit_statistics(rng)}
    # Rates in the order the published tables drew their random data: architecture, then mac.
    archs = {p.axes.get("architecture", sweep.base.get("architecture")) for p in points}
    rate = {}
    for arch in [a for a in MACS_BY_ARCHITECTURE if a in archs]:
        for mac in MACS_BY_ARCHITECTURE[arch]:
            g = EngineGeometry.from_manifest(build(config_of(arch, mac, size)).manifest)
            rate[arch, mac] = macs_per_cycle(g, rng)
    data["gemm_cycles"] = gemm_cycle_table(size, rng)
    sweep, run = run_benchmark_sweep(args, sweep)
    rows = []
    for p, records in synthesised_points(sweep, run):
        values = p.values or {**sweep.base, **p.axes}
        arch, label = values["architecture"], mac_label({"pipeline": 0, **values})
        for row in synth_rows(p, records, architecture=arch, mac=label):
            row["macs_per_cycle"], row["macs_basis"] = rate[arch, values["mac"]]
            rows.append(row)
    # Targets in sweep order, plain engines before pipelined ones.
    targets = list(dict.fromkeys(r["target"] for r in rows))
    data["rows"] = sorted(rows, key=lambda r: ("@" in r["mac"], targets.index(r["target"])))
    data["clock_ns"] = next((p.steps["synth"].get("clock_ns") for p in points
                             if "asic" in p.steps["synth"]["targets"]), None)
    data["rows"], data["not_measured"] = without_excluded(
        data["rows"], lambda r: f"{r['architecture']}/{r['mac']}")
    _mark_same_netlists(data["rows"])
    _write(data, sweep_command("bitweight_compare.py", args))


def _efficiency(row):
    if "error" in row or not row.get("area_um2") or not row.get("critical_path_ns"):
        return None
    gmacs = row["macs_per_cycle"] / row["critical_path_ns"]          # MAC/ns = GMAC/s
    return gmacs / (row["area_um2"] / 1e6)                           # GMAC/s per mm^2


def _classic_lut_map(row) -> bool:
    return any("classic abc" in n for n in row.get("notes") or ())


def _fmax_cell(row) -> str:
    """The row's Fmax; placed with several seeds: their median, then each seed's figure."""
    fmax = row.get("fmax_mhz", "-")
    if "fmax_by_seed" not in row:
        return str(fmax)
    each = [f"{v:g}" if isinstance(v, (int, float)) else "no route" for v in row["fmax_by_seed"].values()]
    return f"{fmax} ({' / '.join(each)})"


def _write(data, command):
    asic = [r for r in data.get("rows", []) if r["target"] == "asic"]
    out = ["## Area efficiency (ASIC, sky130 HD)", "",
           "| architecture | mac | MACs/cycle | area um^2 | critical path ns | GMAC/s/mm^2 | "
           "ratio to baseline | paper |", "| --- | --- | --- | --- | --- | --- | --- | --- |"] \
        if asic else []
    base = {r["architecture"]: _efficiency(r) for r in asic if r["mac"] == "baseline"}
    slice_eff = next((_efficiency(r) for r in asic if r["mac"] == "bitslice"), None)
    for r in asic:
        eff = _efficiency(r)
        r["gmacs_per_mm2"] = eff and round(eff, 2)
        ratio = eff / base[r["architecture"]] if eff and base.get(r["architecture"]) else None
        r["ratio_to_baseline"] = ratio and round(ratio, 3)
        if r["mac"] in ("opt3", "opt4c", "opt4e") and eff and slice_eff:
            r["ratio_to_bitslice"] = round(eff / slice_eff, 3)
        paper = PAPER.get(r["architecture"]) if r["mac"] not in ("baseline", "bitslice") else None
        if "error" in r:
            out.append(f"| {r['architecture']} | {r['mac']} | failed: {r['error'][:100]} |||||| ")
            continue
        out.append(f"| {r['architecture']} | {r['mac']} | {r['macs_per_cycle']:.1f} | "
                   f"{r['area_um2']:,.0f} | {r.get('critical_path_ns', '-')} | "
                   f"{eff:.1f} | {f'{ratio:.2f}x' if ratio else '-'} | {f'{paper:.2f}x' if paper else '-'} |"
                   if eff else f"| {r['architecture']} | {r['mac']} | - | - | - | - | - | - |")
    bs = [r for r in asic if "ratio_to_bitslice" in r]
    if bs:
        out += ["", "Digit-serial engines over the Laconic-style `bitslice` reference (same "
                "2D-Matrix size, effective MACs/cycle on the same data): "
                + ", ".join(f"{r['mac']} {r['ratio_to_bitslice']:.2f}x" for r in bs)
                + " (paper: 2.85x area efficiency over Laconic)."]
    fpga = [r for r in data.get("rows", []) if r["target"] != "asic"]
    if fpga:
        out += ([""] if out else []) + [
            "## ECP5-85F", "", "| architecture | mac | target | LUTs | FFs | DSPs | Fmax MHz | fits | "
            "MMAC/s per kLUT | ratio to baseline |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        per_lut = {}
        for r in fpga:
            if r.get("fits") and r.get("fmax_mhz") and r.get("luts"):
                per_lut[r["architecture"], r["mac"], r["target"]] = \
                    r["macs_per_cycle"] * r["fmax_mhz"] / (r["luts"] / 1000)
        for r in fpga:
            eff = per_lut.get((r["architecture"], r["mac"], r["target"]))
            # Pipelined rows against the pipelined baseline, the others against the plain one.
            base_mac = pipelined_baseline(r["architecture"], r["target"]) if "@" in r["mac"] else "baseline"
            base = per_lut.get((r["architecture"], base_mac, r["target"]))
            r["mmacs_per_klut"] = eff and round(eff, 1)
            r["lut_ratio_to_baseline"] = round(eff / base, 3) if eff and base else None
            out.append(f"| {r['architecture']} | {r['mac']} | {r['target']}"
                       f"{' *' if 'same_netlist_as' in r else ''}{' †' if _classic_lut_map(r) else ''}"
                       f" | {r.get('luts', '-')} | "
                       f"{r.get('ffs', '-')} | {r.get('dsps', '-')} | {_fmax_cell(r)} | "
                       f"{r.get('fits', r.get('error', '-'))} | {f'{eff:.0f}' if eff else '-'} | "
                       f"{f'{eff / base:.2f}x' if eff and base else '-'} |")
    if any("@" in r["mac"] for r in fpga):
        out += ["", "`mac@pN`: the engine with `pipeline: N` (1: registered products; 2: also "
                "operand registers in front of each multiplier, or registered partial products in "
                "carry-save modes; 3: the products once more, carry-save modes the Booth digits instead); "
                "`@p3-ecp5` adds `dsp: ecp5` (MULT18X18D "
                "blocks with their input and output registers). A pipelined row's ratio is against its architecture's "
                "fastest pipelined baseline on the same target (`@p3-ecp5` for the output-stationary "
                "ones, `@p2-ecp5` for the tree, `@p1` otherwise); `baseline@p2` (tree: `@p1`) shows "
                "the same stages left to Yosys's DSP mapping."]
    if any("fmax_by_seed" in r for r in fpga):
        out += ["", "Fmax with several figures in brackets: the median over nextpnr placement "
                "seeds 1, 2, ... (each seed's figure in brackets; `no route`: stopped by the time "
                "limit or failed)."]
    if data["not_measured"]:
        out += ["", data["not_measured"]]
    if any("same_netlist_as" in r for r in fpga):
        out += ["", "\\* Yosys's netlist with DSP blocks allowed is identical (SHA-256) to the "
                "LUT-only one: the core has no multipliers for DSPs to take, so it was placed and "
                "routed once and both rows show that placement."]
    if any(_classic_lut_map(r) for r in fpga):
        out += ["", "† Mapped to LUTs by classic `abc -lut 4:7`: Yosys's abc9 stopped on an internal "
                "assertion for this netlist (the flow's fallback; see the row's notes in the JSON)."]
    out += ["", "## Non-zero radix-4 digits per INT8 operand (normal data, rounded, clipped)", "",
            "| sigma | Booth | EN-T |", "| --- | --- | --- |"]
    out += [f"| {d['sigma']} | {d['booth']} | {d['ent']} |" for d in data["digits"]]
    out += ["", "The paper's repository reports 1.71 / 2.05 / 2.27 / 2.45 / 2.57 for EN-T (K=32 "
            "samples); 4 digits is the dense cost.", "",
            "## Cycles of a 256x256x256 GEMM on the 2D-Matrix engines (cycle model, no stalls)", ""]
    macs = [k for k in data["gemm_cycles"][0] if k != "sigma"]
    out += ["| sigma | " + " | ".join(macs) + " |", "| --- |" + " --- |" * len(macs)]
    out += [f"| {row['sigma']} | " + " | ".join(f"{row[k]:,}" for k in macs) + " |"
            for row in data["gemm_cycles"]]
    asic_flow = (f"ASIC flow as in synth_baselines.md but with `abc -D {data['clock_ns'] * 1000:.0f}` "
                 "for every design (tighter than any meets, so each is mapped for its own fastest "
                 "clock) and the critical path from OpenSTA. ") if data["clock_ns"] else ""
    out += ["", f"Size preset `{data['size']}`; {asic_flow}"
            "MACs/cycle: fixed-latency engines at their streaming peak, digit-serial engines "
            f"effective on normal(0, {data['workload_sigma']}) INT8 data by the cycle model that "
            "the simulations check exactly."]
    write(data["name"], data, "\n".join(out), command)


if __name__ == "__main__":
    main()
