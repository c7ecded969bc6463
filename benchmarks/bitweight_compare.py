"""Bit-weight optimisations against their baselines: area, timing, area efficiency, digit sparsity.

Usage: python benchmarks/bitweight_compare.py [--size standard|small] [--targets asic ...]
                                              [--jobs N] [--timeout-min M] [--name NAME]
                                              [--architectures ARCH ...]
                                              [--compressors wallace 4:2] [--skip-synth]
                                              [--resume [--redo ARCH[/MAC] ...]]
                                              [--skip ARCH/MAC ...] [--pipelined]
                                              [--fpga-clock-ns NS] [--seeds N]

For each architecture at the chosen size (standard: 16x16 systolic OS/WS and 2D-Matrix, 16 dot
products of K=16, 8x8x8 cube; small: half of each edge), INT8 signed, every applicable ``mac``
is synthesised in one run (ASIC sky130 and, if asked, ECP5-85F with and without DSPs).
Area efficiency = MACs per cycle x clock / area, as a ratio to the same architecture's baseline.
MACs per cycle of the digit-serial engines are measured with the cycle model on GEMM data drawn
from a normal distribution (sigma 30, INT8), so they are effective, not peak, rates.

``--pipelined`` adds, on FPGA targets with DSPs, every fixed-latency mac with its FPGA pipeline (``mac@pN``; the
output-stationary baselines on ECP5 with the MULT18X18D registers, ``baseline@p3-ecp5``), and
pipelined rows are compared with the pipelined baseline of their architecture.

Also: average non-zero digits per INT8 operand (normal data, sigma 10..50, Booth and EN-T) and
the cycles of a 256x256x256 GEMM on that data for the 2D-Matrix engines.
Writes docs/results/NAME.{json,md} (NAME defaults to ``bitweight``); progress on stderr. A design
whose tools exceed ``--timeout-min`` is stopped and its row says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from _common import LUT_ONLY_TWIN, RESULTS, VARIANTS, machine, progress, synth_row, write

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


def pipelined(arch, mac, target):
    """The FPGA-pipelined form of ``mac``: ``mac@pN`` (``@pN-ecp5``: the baseline's multipliers
    as ECP5 DSP blocks with their registers, output-stationary ones with one more product
    register, on targets with DSPs; output-stationary carry-save modes with their digits
    registered too)."""
    dsp = mac == "baseline" and target == "ecp5-85f"
    if arch == "tree":
        return "baseline@p2-ecp5" if dsp else f"{mac}@p1"
    if arch not in OUTPUT_STATIONARY:
        return f"{mac}@p1"
    # Carry-save modes: p3 gives the digit selection its own tick (their fastest form).
    return "baseline@p3-ecp5" if dsp else f"{mac}@p3"


def config_of(arch, mac, size):
    """``mac`` is a mac name, or ``mac/compressor`` for a carry-save tree other than Dadda's,
    either followed by ``@pN`` (pipeline stages) or ``@pN-ecp5`` (and ECP5 DSP blocks)."""
    mac, _, pipe = mac.partition("@")
    mac, _, compressor = mac.partition("/")
    stages, _, dsp = pipe.removeprefix("p").partition("-")
    return validate({"family": "bitweight", "architecture": arch, "mac": mac, "max_k": 256,
                     **({"compressor": compressor} if compressor else {}),
                     **({"pipeline": int(stages)} if stages else {}), **({"dsp": dsp} if dsp else {}),
                     **SIZES[size][arch]}, f"<{arch}/{mac}{'@' + pipe if pipe else ''}>")


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


def _measure(job) -> dict:
    """One row. A with-DSP row whose Yosys netlist equals the LUT-only one (a core without
    multipliers) is not placed again: it says ``same_netlist_as`` and takes that row's figures.
    FPGA rows are placed with ``seeds`` nextpnr seeds (their median Fmax)."""
    arch, mac, size, variant, clock_ns, timeout_min, fpga_clock_ns, seeds, workdir = job
    config = config_of(arch, mac, size)
    netlist = lambda v: synth_row(config, v, f"{workdir}/{v}", clock_ns, timeout_min, place=False,
                                  fpga_clock_ns=fpga_clock_ns,
                                  architecture=arch, mac=mac)
    # Pipelined rows are measured on the DSP target only: no LUT-only twin to take figures from.
    if (twin := LUT_ONLY_TWIN.get(variant)) and "@" not in mac:
        first = netlist(variant)
        digest = first.get("netlist_sha256")
        # A netlist with DSP blocks in it cannot be the LUT-only one: only DSP-free ones are compared.
        if digest and first.get("dsps") == 0 and netlist(twin).get("netlist_sha256") == digest:
            return {"architecture": arch, "mac": mac, "target": variant, "same_netlist_as": twin,
                    "netlist_sha256": digest}
    if VARIANTS[variant][0] == "asic" or seeds == 1:
        return synth_row(config, variant, workdir, clock_ns, timeout_min, fpga_clock_ns=fpga_clock_ns,
                         architecture=arch, mac=mac)
    # nextpnr's placement moves an engine's clock by 10-15 % from one seed to the next: the row
    # gives the median over seeds 1..N (the LUT and FF counts are the packer's, the same for all).
    runs = [synth_row(config, variant, f"{workdir}/seed{s}", clock_ns, timeout_min,
                      fpga_clock_ns=fpga_clock_ns, seed=s, architecture=arch, mac=mac)
            for s in range(1, seeds + 1)]
    placed = [r for r in runs if r.get("fmax_mhz")]
    if not placed:
        return runs[0]
    row = dict(placed[0], fmax_mhz=round(statistics.median(r["fmax_mhz"] for r in placed), 1))
    row["fmax_by_seed"] = {str(s): r.get("fmax_mhz") or r.get("error", "no clock")
                           for s, r in enumerate(runs, 1)}
    # The constraint note without its one seed ("constraint 166.667 MHz, nextpnr seed 1").
    row["notes"] = [n.split(", nextpnr seed")[0] for n in row.get("notes", [])] + [
        f"Fmax: median over nextpnr seeds 1-{seeds} of those that routed ({len(placed)})"]
    return row


def _with_twin_figures(rows: list[dict]) -> list[dict]:
    """Rows with ``same_netlist_as`` filled in from their twin's measured figures."""
    measured = {(r["architecture"], r["mac"], r["target"]): r for r in rows if "same_netlist_as" not in r}
    out = []
    for r in rows:
        twin = measured.get((r["architecture"], r["mac"], r.get("same_netlist_as")))
        out.append({**{k: v for k, v in twin.items() if k not in ("target", "notes")}, **r}
                   if twin else r)
    return out


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
    parser.add_argument("--size", choices=list(SIZES), default="standard")
    parser.add_argument("--targets", nargs="+", default=["asic"], choices=list(VARIANTS))
    parser.add_argument("--clock-ns", type=float, default=2.0,
                        help="ASIC: ABC/STA target, tighter than any design meets so each is "
                             "mapped for its own fastest clock")
    parser.add_argument("--fpga-clock-ns", type=float, default=None,
                        help="nextpnr's clock constraint for FPGA targets (default: the synth "
                             "flow's, 100 MHz on ECP5); nextpnr works for a clock only up to it")
    parser.add_argument("--seeds", type=int, default=1,
                        help="place every FPGA row with nextpnr seeds 1..N and report the median "
                             "Fmax (one seed moves it by 10-15 %%)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout-min", type=float, default=45,
                        help="stop a design whose tools run longer than this (its row says so)")
    parser.add_argument("--name", default="bitweight",
                        help="results file stem under docs/results (default: bitweight)")
    parser.add_argument("--architectures", nargs="+", default=list(MACS_BY_ARCHITECTURE),
                        choices=list(MACS_BY_ARCHITECTURE), metavar="ARCH",
                        help="synthesise these architectures only (default: all)")
    parser.add_argument("--compressors", nargs="+", default=[], choices=["wallace", "4:2"],
                        help="also synthesise every optimised mac with these carry-save trees "
                             "(rows 'mac/compressor'; the default tree is Dadda's)")
    parser.add_argument("--skip", nargs="+", default=[], metavar="ARCH/MAC",
                        help="do not synthesise these designs (e.g. one known not to place and "
                             "route within the timeout; pipelined forms as ARCH/MAC@pN); rows kept "
                             "by --resume stay, and so do their errors")
    parser.add_argument("--skip-synth", action="store_true", help="digit statistics only")
    parser.add_argument("--pipelined", action="store_true",
                        help="also the FPGA-pipelined form of every fixed-latency mac")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows of docs/results/NAME.json measured without error and "
                             "synthesise only the missing ones (long runs stopped part-way)")
    parser.add_argument("--redo", nargs="+", default=[], metavar="ARCH[/MAC]",
                        help="with --resume: measure these architectures, or single rows (e.g. "
                        "systolic_os/opt1@p2), again (after a change to their hardware)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: at least 1")
    if args.fpga_clock_ns is not None and args.fpga_clock_ns <= 0:
        parser.error(f"--fpga-clock-ns {args.fpga_clock_ns:g}: a clock period in ns, above 0")
    if args.redo and not args.resume:
        parser.error("--redo needs --resume")
    if unknown := [d for d in args.redo if d.partition("/")[0] not in MACS_BY_ARCHITECTURE]:
        parser.error(f"--redo: unknown architecture in {', '.join(unknown)}; known: "
                     f"{', '.join(MACS_BY_ARCHITECTURE)}")
    known = {f"{a}/{m}" for a, macs in MACS_BY_ARCHITECTURE.items() for m in macs}
    if unknown := [d for d in args.skip if d.partition("@")[0] not in known]:
        parser.error(f"--skip: unknown design {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    rng = np.random.default_rng(2025)
    data = {"title": "Bit-weight optimisations vs baselines", "machine": machine(),
            "size": args.size, "clock_ns": args.clock_ns, "workload_sigma": WORKLOAD_SIGMA,
            "digits": digit_statistics(rng)}
    rate = {}
    for arch in args.architectures:
        for mac in MACS_BY_ARCHITECTURE[arch]:
            g = EngineGeometry.from_manifest(build(config_of(arch, mac, args.size)).manifest)
            rate[arch, mac] = macs_per_cycle(g, rng)
            if mac != "baseline":
                rate.update({(arch, f"{mac}/{c}"): rate[arch, mac] for c in args.compressors})
    data["gemm_cycles"] = gemm_cycle_table(args.size, rng)
    if not args.skip_synth:
        jobs = [(arch, mac, args.size, variant, args.clock_ns, args.timeout_min, args.fpga_clock_ns, args.seeds)
                for variant in args.targets for arch, mac in rate]
        if args.pipelined:
            # FPGA pipelining: on FPGA targets with DSP blocks.
            for variant in [v for v in args.targets if v != "asic" and not VARIANTS[v][1]]:
                for arch, mac in list(rate):
                    if "/" not in mac and mac not in DIGIT_SERIAL:
                        names = {pipelined(arch, mac, variant)}
                        if mac == "baseline" and arch in OUTPUT_STATIONARY + ("tree",):
                            # The same stages in the fabric.
                            names.add("baseline@p1" if arch == "tree" else "baseline@p2")
                        for name in sorted(names):
                            rate[arch, name] = rate[arch, mac]
                            jobs.append((arch, name, args.size, variant, args.clock_ns, args.timeout_min,
                                         args.fpga_clock_ns, args.seeds))
        done, old_rows = {}, {}
        if args.resume:
            # Rows of an earlier run of the same size that measured without error are kept.
            old = json.loads((RESULTS / f"{args.name}.json").read_text())
            if old.get("size") != args.size:
                raise SystemExit(f"--resume: {args.name}.json holds size {old.get('size')!r}")
            old_rows = {(r["architecture"], r["mac"], r["target"]): r for r in old.get("rows", [])}
            kept = {key: r for key, r in old_rows.items()
                    if "error" not in r and not {r["architecture"], f"{r['architecture']}/{r['mac']}"} & set(args.redo)}
            done = {n: dict(kept[job[0], job[1], job[3]], macs_per_cycle=rate[job[:2]][0],
                            macs_basis=rate[job[:2]][1])
                    for n, job in enumerate(jobs) if (job[0], job[1], job[3]) in kept}
            progress(f"--resume: {len(done)} of {len(jobs)} rows kept from {args.name}.json")
        # A skipped design without a kept row still gets a row (its earlier error, if any), so
        # the table shows the gap.
        done.update({n: old_rows.get((job[0], job[1], job[3]), {
                         "architecture": job[0], "mac": job[1], "target": job[3],
                         "error": "not synthesised in this run (--skip)"})
                     for n, job in enumerate(jobs)
                     if n not in done and f"{job[0]}/{job[1]}" in args.skip})
        with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(max_workers=args.jobs) as pool:
            # Largest designs (cube, tree) first so the pool's tail is short; rows keep job order.
            futures = {pool.submit(_measure, (*job, f"{tmp}/{n}")): n
                       for n, job in reversed(list(enumerate(jobs))) if n not in done}
            for future in as_completed(futures):
                row = future.result()
                row["macs_per_cycle"], row["macs_basis"] = rate[row["architecture"], row["mac"]]
                done[futures[future]] = row
                data["rows"] = _with_twin_figures([done[n] for n in sorted(done)])
                _write(data, args)
        data["rows"] = _with_twin_figures([done[n] for n in sorted(done)])
    _write(data, args)


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


def _write(data, args):
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
            base_mac = pipelined(r["architecture"], "baseline", r["target"]) if "@" in r["mac"] else "baseline"
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
    if args.resume:
        out += ["", "`--resume`: rows measured without error in an earlier run of this file were kept, "
                "not re-measured (see the JSON's history in git); the rest were measured in this run."]
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
    out += ["", f"Size preset `{data['size']}`; ASIC flow as in synth_baselines.md but with "
            f"`abc -D {data['clock_ns'] * 1000:.0f}` for every design (tighter than any meets, so "
            "each is mapped for its own fastest clock) and the critical path from OpenSTA. "
            "MACs/cycle: fixed-latency engines at their streaming peak, digit-serial engines "
            f"effective on normal(0, {data['workload_sigma']}) INT8 data by the cycle model that "
            "the simulations check exactly."]
    command = (f"python benchmarks/bitweight_compare.py --size {args.size} --targets "
               f"{' '.join(args.targets)}" + (f" --name {args.name}" if args.name != "bitweight" else "")
               + (f" --architectures {' '.join(args.architectures)}"
                  if args.architectures != list(MACS_BY_ARCHITECTURE) else "")
               + (f" --compressors {' '.join(args.compressors)}" if args.compressors else "")
               + (" --resume" if args.resume else "")
               + (f" --redo {' '.join(args.redo)}" if args.redo else "")
               + (f" --skip {' '.join(args.skip)}" if args.skip else "")
               + (" --pipelined" if args.pipelined else "")
               + (f" --fpga-clock-ns {args.fpga_clock_ns:g}" if args.fpga_clock_ns else "")
               + (f" --seeds {args.seeds}" if args.seeds > 1 else "")
               + (f" --timeout-min {args.timeout_min:g}" if args.timeout_min != 45 else ""))
    write(args.name, data, "\n".join(out), command)


if __name__ == "__main__":
    main()
