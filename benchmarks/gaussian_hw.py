"""The rasteriser hardware on the garden scene, from its exact cycle model: pairs evaluated and
cycles per frame, per lane count and pair-skipping sub-tile size; the frame rate at a clock and
the clock each rate needs, beside the published anchors; records fetched per frame through the
Gaussian buffer against the board memory's bandwidth.

The cycle model (``accelsmith.models.gaussian.hardware.RasteriserTiming``) is checked against the
hardware's cycle counter on every stall-free run of the testbench; the kept sub-tiles per entry
come from ``subtile_keep_fixed``, the NumPy form of the hardware's skipping test. Writes
``docs/results/gaussian_hw.json``, ``.md`` and ``gaussian_hw.png``.

    python benchmarks/gaussian_hw.py [--scene ../shared/data/test_garden.npz] [--cameras 0 1 2]
        [--synth CONFIG=REPORT.json ...] [--by-module CONFIG ...]

``--synth`` adds the figures of ``accelsmith synth CONFIG --target ecp5-85f --json
REPORT.json`` (slow: Yosys maps a whole rasteriser in 5-10 minutes; the WebAssembly nextpnr
takes hours to place and route it, which ``--route-minutes`` bounds) and the frame rate at the clock nextpnr achieved, or of ``--target
asic`` (sky130 area and the clock OpenSTA allows). ``--by-module`` maps a config for the
ECP5-85F without flattening and tabulates where its LUTs go (about 2 minutes). Hardware figures
not given again are kept from the previous ``gaussian_hw.json``, with their dates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dataclasses import asdict

from accelsmith.config import load
from accelsmith.flows.synth import ModuleArea, breakdown_table, module_breakdown
from accelsmith.generators.gaussian import subtile_of
from accelsmith.models.gaussian import fixed
from accelsmith.models.gaussian.hardware import RasteriserTiming
from accelsmith.models.gaussian.pipeline import load_scene
from accelsmith.models.gaussian.render import bin_tiles, project
from accelsmith.models.gaussian.schedule import count_fetches, tile_order

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
LANES = (16, 64, 256)
SUBTILES = (0, 4, 8, 16)
FETCH_ORDERS = ("hilbert", "pi")
BUFFERS = (2048, 4096)
RECORD_BYTES = 32           # a record beat as the SoC's buffers store it (202 bits, 8 words)
# ULX3S: a 16-bit SDR SDRAM (amaranth-boards' ULX3S resources); 200 MB/s peak at 100 MHz.
BOARD_MEMORY_MB_S = 200
# Published and measured anchors (REFERENCE.md section 3): whole-frame rates, not ours.
ANCHORS = [
    ("seed paper v2 (ISCA 2026)", "16x16 PE array, 28 nm, 1 GHz, 3.85 mm^2",
     "> 150 FPS rasterisation on Mip-NeRF 360 (outdoor scenes downsampled 4x)"),
    ("GSCore (ASPLOS 2024)", "64 rendering units, 28 nm, 1 GHz, 3.95 mm^2",
     "about 82 FPS on the garden (re-modelled by the seed paper)"),
    ("edge GPU (Jetson Orin Nano)", "as the seed paper reports it", "about 20 FPS end to end"),
    ("gsplat on an H200", "CUDA rasteriser, sorted, measured for this scene at 648x420",
     "0.92 ms per frame (about 1,090 FPS, launch-bound)"),
]


def camera_figures(scene, cam) -> dict:
    bins = bin_tiles(project(scene, cam))
    fv = fixed.quantise_view(bins.proj)
    counts = [int(n) for n in np.diff(bins.offsets)]
    full = sum(counts) * 256
    contributing = 0
    kept = {s: [] for s in SUBTILES if s}
    for t in range(len(bins)):
        rows = bins.tile(t)
        ty, tx = divmod(t, bins.proj.tiles_x)
        if len(rows):
            a, b, c, dy = fixed.axis_terms_fixed(fv, rows, tx, ty)
            power = fixed.sat(a[:, None, :] + c[:, :, None]
                              + fixed.rshift_round(b[:, None, :] * dy[:, :, None], 8),
                              fixed.POWER_MIN, 0)
            contributing += int((fixed.visibility_fixed(
                fv.opacity[rows, None], power.reshape(len(rows), 256)) > 0).sum())
        for s in kept:
            kept[s].append(fixed.subtile_keep_fixed(fv, rows, tx, ty, s).sum(axis=1).tolist()
                           if len(rows) else [])
    pairs = {0: full}
    pairs.update({s: sum(sum(k) for k in kept[s]) * s * s for s in kept})
    cycles = {}
    for lanes in LANES:
        side = int(round(lanes ** 0.5))
        for s in SUBTILES:
            if s and s < side:
                continue
            timing = RasteriserTiming(lanes, s)
            cycles[f"{lanes}/{s}"] = timing.run_cycles(kept[s] if s else counts)
    fetches = {f"{order}/{size}": count_fetches(bins, tile_order(order, bins.proj.tiles_x,
                                                                 bins.proj.tiles_y), size)
               for order in FETCH_ORDERS for size in BUFFERS}
    return {"tiles": len(counts), "entries": sum(counts), "pairs_full": full,
            "fetches": fetches,
            "pairs_contributing": contributing,
            "pairs_evaluated": {str(s): p for s, p in pairs.items()},
            "frame_cycles": cycles,
            "readout_cycles": len(counts) * 256}


def write_markdown(data: dict, path: Path):
    cams = data["cameras"]
    lines = ["# Rasteriser hardware on the garden scene (cycle model)", "",
             f"Measured with `python benchmarks/gaussian_hw.py` on {data['date']} (scene "
             f"`{data['scene']}`, {data['width']}x{data['height']}); raw data in "
             "`gaussian_hw.json`. Cycles come from the exact cycle model the testbench checks "
             "against the hardware's counter; kept sub-tiles from the hardware's skipping test "
             "in NumPy.", "", "## Pairs evaluated", "",
             "| sub-tile | " + " | ".join(f"camera {c}" for c in cams) + " |",
             "| --- | " + " | ".join("---" for _ in cams) + " |"]
    for s in SUBTILES:
        label = "none (full evaluation)" if s == 0 else f"{s}x{s}"
        cells = []
        for c in cams.values():
            p = c["pairs_evaluated"][str(s)]
            cells.append(f"{p / 1e6:.1f}M ({100 * p / c['pairs_full']:.1f} %)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| contributing (v > 0) | " + " | ".join(
        f"{c['pairs_contributing'] / 1e6:.1f}M ({100 * c['pairs_contributing'] / c['pairs_full']:.1f} %)"
        for c in cams.values()) + " |")
    lines += ["", "## Cycles per frame", "", "| lanes | sub-tile | " + " | ".join(
        f"camera {c}" for c in cams) + " |", "| --- | --- | " + " | ".join("---" for _ in cams) + " |"]
    for key in next(iter(cams.values()))["frame_cycles"]:
        lanes, s = key.split("/")
        lines.append(f"| {lanes} | {'none' if s == '0' else s + 'x' + s} | " + " | ".join(
            f"{c['frame_cycles'][key]:,}" for c in cams.values()) + " |")
    cam0 = next(iter(cams.values()))
    floor = cam0["readout_cycles"]
    lines += ["", f"The tiles' read-outs (256 cycles per tile, {floor:,} per frame) overlap the "
              "next tile's entries (two banks of sums) and bound a frame from below: the "
              f"256-lane rasteriser is at {cam0['frame_cycles']['256/0'] / floor:.2f} times that "
              "bound (tiles with few entries wait for the read-out before them).", ""]
    lines += fps_section(data)
    path.write_text("\n".join(lines))


def synth_section(data: dict) -> list[str]:
    """The rasterisers' FPGA figures from ``accelsmith synth`` reports, with the frame rate at
    the achieved clock; then the sky130 figures and the breakdowns by module."""
    lines = fpga_section(data) if data.get("synth") else []
    cams = list(data["cameras"].values())
    if data.get("asic"):
        lines += _report_table(
            data["asic"], cams, "## On sky130",
            "`accelsmith synth CONFIG --target asic --liberty ../shared/data/sky130hd_tt.lib.gz "
            "--json R.json` (sky130 HD typical corner, the core's own ports, no placement or "
            "wires; the clock is OpenSTA's critical path):",
            ["area (mm^2)", "cells", "flip-flops", "critical path (ns)", "Fmax (MHz)",
             "FPS at Fmax (worst camera)"],
            lambda f, rep, fmax, cyc: [f"{f['area_um2'] / 1e6:.2f}", f"{f['cells']:,}",
                                       f"{f['flip_flops']:,}", f"{f.get('critical_path_ns', '-')}",
                                       f"{fmax or '-'}", f"{fmax * 1e6 / cyc:.0f}" if fmax else "-"])
    for name, entry in data.get("by_module", {}).items():
        rows = [ModuleArea(**r) for r in entry["rows"]]
        total = sum(r.cells["luts"] for r in rows)
        placed = data.get("synth", {}).get(name)
        packed = (f"nextpnr's packed count of the flattened design (the table above, "
                  f"{placed['date']}) is {placed['figures']['luts']:,}, "
                  f"{placed['figures']['luts'] / total:.2f} times this total. "
                  if placed else "")
        lines += [f"## Where the LUTs go: {name}", "",
                  f"`accelsmith synth {entry['config']} --target ecp5-85f --by-module` on "
                  f"{entry['date']}: Yosys's ECP5 cells per submodule of the rasteriser (a row "
                  "`setup` counts the set-up's own cells, `setup.skip` its skipping test's), not "
                  "flattened and not placed. A carry cell counts as 2 LUTs; LUT RAMs are the sums' "
                  "memories; `(own logic)` is the rasteriser's outside its submodules (lane "
                  "operands, accumulators, read-out). These are Yosys's counts before packing: "
                  f"{packed}Against the device's 83,640 they show where the area goes.", ""]
        lines += breakdown_table(rows) + [""]
    return lines


def _report_table(reports: dict, cams: list, title: str, command: str, columns: list[str],
                  cells) -> list[str]:
    """A table of synthesis reports: the config, its lanes and sub-tile, the network, then
    ``cells(figures, report, fmax, cycles of the slowest camera's frame)`` under ``columns``,
    and the date measured."""
    header = ["config", "lanes, sub-tile", "network", *columns, "measured"]
    lines = [title, "", command, "", "| " + " | ".join(header) + " |",
             "|" + " --- |" * len(header)]
    for name, rep in reports.items():
        f, key = rep["figures"], rep["cycles_key"]
        lanes, sub = key.split("/")
        cyc = max(c["frame_cycles"][key] for c in cams)
        row = [name, f"{lanes}, {'none' if sub == '0' else sub + 'x' + sub}",
               "yes" if rep["network"] else "no", *cells(f, rep, f.get("fmax_mhz"), cyc),
               rep.get("date", "-")]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def fpga_section(data: dict) -> list[str]:
    """The ECP5-85F table of the ``accelsmith synth`` reports."""
    cams = list(data["cameras"].values())
    lines = _report_table(
        data["synth"], cams, "## On the ECP5-85F",
        "`accelsmith synth CONFIG --target ecp5-85f --seed 1 --clock-ns 20 --json R.json` (with "
        "`--route-minutes 1`: the packed design, no clock) "
        "(the rasteriser core behind the flow's scan harness; LUTs are nextpnr's "
        "TRELLIS_COMB cells after packing, of 83,640; 156 MULT18X18D, 208 DP16KD):",
        ["LUTs", "FFs", "DSPs", "BRAMs", "fits", "Fmax (MHz)", "FPS at Fmax (worst camera)",
         "Yosys + nextpnr (min)"],
        lambda f, rep, fmax, cyc: [f"{f['luts']:,} ({f['luts_pct']:.0f} %)", f"{f['ffs']:,}",
                                   f"{f['dsps']}", f"{f['brams']}", "yes" if f["fits"] else "no",
                                   f"{fmax or '-'}", f"{fmax * 1e6 / cyc:.1f}" if fmax else "-",
                                   f"{rep['seconds'] / 60:.0f}" if rep.get("seconds") else "-"])
    notes = sorted({n for rep in data["synth"].values() for n in rep.get("notes", [])
                    if "does not fit" in n or "abc" in n or "not finished" in n})
    return lines + [f"* {n}" for n in notes] + ([""] if notes else [])


def fps_section(data: dict) -> list[str]:
    """FPS from the cycles at a clock, the clock each frame rate needs, bytes per frame against
    the board's memory, and the anchors beside them."""
    cams = list(data["cameras"].values())
    worst = {k: max(c["frame_cycles"][k] for c in cams) for k in cams[0]["frame_cycles"]}
    lines = synth_section(data) + ["## Frame rate", "",
             "From the slowest of the cameras' cycle counts, at a clock, and the clock a rate "
             "needs (the achieved clocks are in the section above).", "",
             "| lanes | sub-tile | cycles per frame | FPS at 100 MHz | FPS at 1 GHz | MHz for 30 FPS | "
             "MHz for 60 FPS |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, cyc in worst.items():
        lanes, sub = key.split("/")
        lines.append(f"| {lanes} | {'none' if sub == '0' else sub + 'x' + sub} | {cyc:,} | "
                     f"{100e6 / cyc:.1f} | {1e9 / cyc:.0f} | {30 * cyc / 1e6:.1f} | "
                     f"{60 * cyc / 1e6:.1f} |")
    lines += ["", "Anchors (whole-frame figures as published or measured; ours above count the "
              "rasteriser only, projection and binning run on the host):", "",
              "| design | hardware | frame rate |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in ANCHORS]
    lines += ["", "## Record traffic per frame", "",
              f"Records fetched per frame through the on-chip Gaussian buffer "
              f"(`count_fetches`, equal to the hardware's FETCHES: docs/results/gaussian_frame.md), "
              f"at {RECORD_BYTES} bytes each, against the ULX3S's 16-bit SDRAM "
              f"({BOARD_MEMORY_MB_S} MB/s peak at 100 MHz) at 60 FPS:", "",
              "| buffer | " + " | ".join(f"camera {c}" for c in data["cameras"]) + " | MB/s at 60 "
              "FPS (worst) | share of the SDRAM |", "| --- | " + " | ".join("---" for _ in cams)
              + " | --- | --- |"]
    rows = [("none (every entry)", [c["entries"] for c in cams])]
    rows += [(f"{k.split('/')[1]} records, {k.split('/')[0]}", [c["fetches"][k] for c in cams])
             for k in cams[0]["fetches"]]
    for label, counts in rows:
        mb = max(counts) * RECORD_BYTES * 60 / 1e6
        lines.append(f"| {label} | " + " | ".join(f"{n:,} ({n * RECORD_BYTES / 1e6:.1f} MB)"
                                                   for n in counts)
                     + f" | {mb:.0f} | {100 * mb / BOARD_MEMORY_MB_S:.0f} % |")
    return lines + [""]


def plot(data: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cam = data["cameras"]["0"]
    keys = list(cam["frame_cycles"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(len(keys)), [cam["frame_cycles"][k] / 1e6 for k in keys])
    ax.axhline(cam["readout_cycles"] / 1e6, color="grey", ls="--", label="tile read-outs (the floor)")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{k.split('/')[0]} lanes\n" + ("no skip" if k.endswith("/0") else
                        f"{k.split('/')[1]}x{k.split('/')[1]}") for k in keys], fontsize=8)
    ax.set_ylabel("million cycles per frame (camera 0)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default=str(ROOT.parent / "shared" / "data" / "test_garden.npz"))
    ap.add_argument("--cameras", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--synth", nargs="*", default=[], metavar="CONFIG=REPORT",
                    help="accelsmith synth --json reports (ecp5-85f or asic) of gaussian configs")
    ap.add_argument("--by-module", nargs="*", default=[], metavar="CONFIG",
                    help="gaussian configs to map for the ECP5-85F by module")
    args = ap.parse_args(argv)
    out = Path(args.out)
    previous = json.loads((out / "gaussian_hw.json").read_text()) if (out / "gaussian_hw.json").exists() else {}
    today = time.strftime("%Y-%m-%d")
    hardware = {key: dict(previous.get(key, {})) for key in ("synth", "asic", "by_module")}
    for key, entries in hardware.items():
        for entry in entries.values():
            entry.setdefault("date", previous.get("date", "-"))
    for item in args.synth:
        name, _, report = item.partition("=")
        cfg = load(name)
        if cfg.family != "gaussian" or not report:
            ap.error(f"--synth {item}: expected GAUSSIAN_CONFIG=REPORT.json")
        rep = json.loads(Path(report).read_text())
        rep.update(cycles_key=f"{cfg['lanes']}/{subtile_of(cfg)}", network=cfg["network"], date=today)
        hardware["asic" if rep["target"] == "asic" else "synth"][Path(name).stem] = rep
    for name in args.by_module:
        cfg = load(name)
        if cfg.family != "gaussian":
            ap.error(f"--by-module {name}: not a gaussian config")
        t0 = time.monotonic()
        rows = module_breakdown(cfg, "ecp5-85f", ROOT / "build" / "benchmarks")
        print(f"{name}: mapped by module in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        hardware["by_module"][Path(name).stem] = {"config": name, "date": today,
                                                  "rows": [asdict(r) for r in rows]}
    scene, cams = load_scene(args.scene)
    data = {"date": today, "scene": Path(args.scene).name,
            "width": cams[0].width, "height": cams[0].height, "cameras": {}, **hardware}
    for c in args.cameras:
        t0 = time.monotonic()
        data["cameras"][str(c)] = camera_figures(scene, cams[c])
        print(f"camera {c}: {data['cameras'][str(c)]['entries']:,} entries "
              f"({time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gaussian_hw.json").write_text(json.dumps(data, indent=1) + "\n")
    write_markdown(data, out / "gaussian_hw.md")
    plot(data, out / "gaussian_hw.png")
    print(f"wrote {out / 'gaussian_hw.md'}, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
