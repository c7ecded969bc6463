"""Synthesis flows on a small core: sky130 area + OpenSTA timing, generic fallback, FPGAs."""

from pathlib import Path

import pytest

from amaranth import Value
from amaranth.lib.wiring import In

from accelsmith.config import validate
from accelsmith.flows import tools
from accelsmith.flows.synth import synthesize

SMALL = validate({"family": "bitweight", "architecture": "systolic_os", "rows": 2, "cols": 2,
                  "a_bits": 4, "b_bits": 4})


def test_asic_sky130(sky130_liberty, tmp_path):
    report = synthesize(SMALL, "asic", tmp_path, liberty=str(sky130_liberty), clock_ns=5, quiet=True)
    f = report.figures
    assert f["area_um2"] > 1000 and f["cells"] > 100 and f["flip_flops"] > 50
    cells = f["cells_by_type"]
    assert all(c.startswith("sky130_fd_sc_hd__") for c in cells)
    # sky130 practice: no don't-use cells, one tie cell per polarity (not one per constant bit).
    assert not [c for c in cells if "lpflow" in c or "probe" in c], cells
    assert cells.get("sky130_fd_sc_hd__conb_1", 0) <= 2, cells
    if tools.opensta() is None:
        pytest.skip("OpenSTA not on PATH (optional; .ci/run installs it): timing unchecked")
    assert 0.3 < f["critical_path_ns"] < 50
    assert f["fmax_mhz"] == pytest.approx(1000 / f["critical_path_ns"], rel=1e-2)
    assert f["setup_slack_ns"] == pytest.approx(5 - f["critical_path_ns"], abs=1e-3)
    assert f["timing_met"] is (f["setup_slack_ns"] >= 0)


def test_asic_flags_a_violated_clock(sky130_liberty, tmp_path):
    """A clock no design meets is reported as violated, with the clock it would meet."""
    report = synthesize(SMALL, "asic", tmp_path, liberty=str(sky130_liberty), clock_ns=0.2,
                        quiet=True)
    if tools.opensta() is None:
        pytest.skip("OpenSTA not on PATH (optional; .ci/run installs it): timing unchecked")
    f = report.figures
    assert f["timing_met"] is False and f["setup_slack_ns"] < 0
    assert report.notes[0].startswith("TIMING VIOLATED") and "--clock-ns" in report.notes[0]
    assert ["timing_met", "NO"] in [line.split() for line in report.table().splitlines()]


def test_asic_dont_use_list_is_overridable(sky130_liberty, tmp_path):
    """With the don't-use list emptied, ABC is free to pick the lpflow cells again (it does on
    this core); the default list keeps them out."""
    free = synthesize(SMALL, "asic", tmp_path / "free", liberty=str(sky130_liberty), clock_ns=5,
                      quiet=True, dont_use=())
    assert any("lpflow" in c for c in free.figures["cells_by_type"]), free.figures["cells_by_type"]
    assert any("don't-use cells: none" in n for n in free.notes)


def test_asic_keeping_the_hierarchy_maps_the_same_design_module_by_module(sky130_liberty, tmp_path):
    """Each submodule mapped on its own: the same cells in kind, an area near the flat one (no
    optimisation across the core / register file boundary), its own folder and a note."""
    from accelsmith.cli import main

    flat = synthesize(SMALL, "asic", tmp_path, liberty=str(sky130_liberty), clock_ns=5, quiet=True)
    kept = synthesize(SMALL, "asic", tmp_path, liberty=str(sky130_liberty), clock_ns=5, quiet=True,
                      keep_hierarchy=True)
    assert (tmp_path / kept.top / "synth_asic_hier" / "netlist.v").is_file()
    netlist = (tmp_path / kept.top / "synth_asic_hier" / "netlist.v").read_text()
    assert netlist.count("\nmodule ") >= 3          # the top, its core and its register file
    assert 0.9 < kept.figures["area_um2"] / flat.figures["area_um2"] < 1.3
    assert kept.figures["flip_flops"] == flat.figures["flip_flops"]
    assert any("hierarchy kept" in n for n in kept.notes)
    if tools.opensta() is not None:
        assert 0.3 < kept.figures["critical_path_ns"] < 50
    cfg = tmp_path / "os.yaml"
    cfg.write_text("family: bitweight\narchitecture: systolic_os\nrows: 2\ncols: 2\na_bits: 4\nb_bits: 4\n")
    assert main(["synth", str(cfg), "--target", "ecp5-85f", "--keep-hierarchy"]) == 1


def test_asic_without_liberty_gives_counts_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PDK_ROOT", str(tmp_path / "no_pdk"))
    # Hide PDKs under ~ without moving HOME: YoWASP keeps its compiled tools under ~/.cache.
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    report = synthesize(SMALL, "asic", tmp_path, quiet=True)
    assert "area_um2" not in report.figures and "critical_path_ns" not in report.figures
    assert report.figures["cells"] > 100 and report.figures["logic_levels"] > 5
    assert "NOT an area or timing estimate" in report.table()
    # Its own folder: a Liberty run's report.json is never overwritten by generic counts.
    assert (tmp_path / report.top / "synth_asic_generic" / "report.json").is_file()
    assert not (tmp_path / report.top / "synth_asic").exists()


def test_ecp5(tmp_path):
    report = synthesize(SMALL, "ecp5-85f", tmp_path, quiet=True)
    f = report.figures
    assert f["dsps"] == 4 and f["luts"] > 50 and f["ffs"] >= f["harness_ffs"]
    assert f["fmax_mhz"] > 10
    # One LUT figure: the device's own count, the same the utilisation table shows.
    assert f["luts"] == f["utilization"]["TRELLIS_COMB"]["used"] and f["luts_from"].startswith("nextpnr")
    assert f["luts_pct"] == pytest.approx(100 * f["luts"] / 83640, abs=0.05)
    assert any("scan harness" in n for n in report.notes)


def test_a_place_and_route_past_its_budget_reports_the_packed_design(tmp_path):
    """The budget stops nextpnr (it loads the ECP5 database for longer than a second): the
    design fits after packing, so the report gives the packed figures, no clock, and says why."""
    report = synthesize(SMALL, "ecp5-85f", tmp_path, quiet=True, route_minutes=1 / 60)
    f = report.figures
    assert f["fits"] is True and f["fmax_mhz"] is None and f["luts_from"].startswith("nextpnr")
    assert f["luts"] > 50 and f["dsps"] == 4
    assert report.notes[0].startswith("fits LFE5U-85F") and "time limit" in report.notes[0]


def test_the_breakdown_by_module_finds_where_the_cells_go(tmp_path, capsys):
    from accelsmith.cli import main
    from accelsmith.flows.synth import module_breakdown

    rows = {r.name: r for r in module_breakdown(SMALL, "ecp5-85f", tmp_path, quiet=True)}
    # the 2x2 array's four multipliers are in its core, the register file has none
    assert rows["core"].cells["dsps"] == 4 and rows["core"].instances == 1
    assert rows["regs"].cells["dsps"] == 0 and rows["regs"].cells["luts"] > 0
    assert "(own logic)" in rows and sum(r.cells["dsps"] for r in rows.values()) == 4
    cfg = tmp_path / "os.yaml"
    cfg.write_text("family: bitweight\narchitecture: systolic_os\nrows: 2\ncols: 2\na_bits: 4\nb_bits: 4\n")
    assert main(["synth", str(cfg), "--target", "ecp5-85f", "--by-module", "--workdir",
                 str(tmp_path), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "| core | 1 |" in out and "| all |" in out and (tmp_path / "m.json").exists()
    assert main(["synth", str(cfg), "--target", "asic", "--by-module"]) == 1
    assert "for FPGA targets" in capsys.readouterr().err


def test_ecp5_without_dsp(tmp_path):
    report = synthesize(SMALL, "ecp5-85f", tmp_path, no_dsp=True, quiet=True)
    assert report.figures["dsps"] == 0 and report.figures["luts"] > 100


def test_netlist_digest_tells_when_dsps_change_nothing(tmp_path):
    """The bit-weight benchmark reuses a LUT-only placement for a design whose netlist is the
    same with DSPs allowed; that holds only if the digest separates the two cases."""
    digest = lambda cfg, no_dsp: synthesize(cfg, "ecp5-85f", tmp_path / str(no_dsp), no_dsp=no_dsp,
                                            quiet=True, place=False).figures
    opt1 = validate({**SMALL.raw, "mac": "opt1"})       # Booth partial products: no multipliers
    with_dsp, without = digest(opt1, False), digest(opt1, True)
    assert with_dsp["fits"] is None and with_dsp["dsps"] == 0
    assert with_dsp["netlist_sha256"] == without["netlist_sha256"]
    assert digest(SMALL, False)["netlist_sha256"] != digest(SMALL, True)["netlist_sha256"]


def test_abc9_failure_is_told_from_other_yosys_failures(tmp_path):
    from accelsmith.flows.synth import _failed_in_abc9

    log = tmp_path / "fpga.log"
    head = "2.43. Executing TECHMAP pass (map to technology primitives).\n"
    abc9 = ("2.44. Executing ABC9 pass.\n2.44.14.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate)."
            "\nERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed\n")
    for text, expected in [(head + abc9, True), (head + "ERROR: syntax error\n", False),
                           (head + abc9.split("\nERROR")[0] + "\n2.45. Executing TECHMAP pass."
                            "\nERROR: x\n", False), ("ERROR: no steps\n", False)]:
        log.write_text(text)
        assert _failed_in_abc9(log) is expected, text


@pytest.mark.slow
def test_ecp5_falls_back_to_classic_lut_mapping_when_abc9_fails(tmp_path):
    """Yosys 0.70's abc9 asserts on this core (about 10 minutes of Yosys); the flow maps it with
    classic abc instead and says so. If a later Yosys maps it with abc9, the note is absent."""
    ws = validate({"family": "bitweight", "architecture": "systolic_ws", "rows": 8, "cols": 8,
                   "m_tile": 8, "max_k": 256})
    report = synthesize(ws, "ecp5-85f", tmp_path, no_dsp=True, quiet=True, place=False)
    assert report.figures["luts"] > 1000
    if (tmp_path / report.top / "synth_ecp5-85f_nodsp" / "fpga_abc9_failed.log").exists():
        assert any("classic abc" in n for n in report.notes)


def test_ice40(tmp_path):
    report = synthesize(SMALL, "ice40-up5k", tmp_path, quiet=True)
    assert report.figures["luts"] > 50 and report.figures["fmax_mhz"] > 5
    assert report.figures["luts"] == report.figures["utilization"]["ICESTORM_LC"]["used"]


def test_bad_liberty_path(tmp_path):
    with pytest.raises(tools.ToolError, match="no such file"):
        synthesize(SMALL, "asic", tmp_path, liberty=str(tmp_path / "missing.lib"), quiet=True)


def test_design_too_big_for_device_reports_not_fitting(tmp_path):
    big = validate({"family": "bitweight", "architecture": "matrix2d", "rows": 3, "cols": 3})
    report = synthesize(big, "ice40-up5k", tmp_path, quiet=True)   # 9 multipliers, 8 DSPs
    assert report.figures["fits"] is False and report.figures["fmax_mhz"] is None
    assert report.figures["dsps"] == 9
    assert "does not fit" in report.notes[0] and "ICESTORM_DSP 9 of 8" in report.notes[0]


def test_library_cells_of_sky130(sky130_liberty, tmp_path):
    from accelsmith.flows.synth import _library_cells, _local_liberty

    assert _library_cells(_local_liberty(sky130_liberty, tmp_path)) == (
        "sky130_fd_sc_hd__inv_2", "sky130_fd_sc_hd__conb_1")



@pytest.mark.parametrize("pipeline, tied", [(2, True), (0, False)])
def test_scan_harness_ties_a_stall_free_cores_enable(pipeline, tied):
    """A stall-free core's shell holds ``en`` high, so the harness does too (from a scan bit it
    would be a clock enable on every register); other cores get ``en`` from the scan chain."""
    from amaranth import signed
    from amaranth.sim import Simulator

    from accelsmith.hdl.harness import ScanHarness
    from accelsmith.hdl.tensor_cores import SystolicOSArray

    core = SystolicOSArray(2, 2, signed(8), signed(8), signed(24), mac="opt1", pipeline=pipeline)
    harness = ScanHarness(core)
    assert core.stall_free == tied
    core_in_bits = sum(len(Value.cast(v)) for _, m, v in core.signature.flatten(core) if m.flow == In)
    assert harness.in_bits == core_in_bits - tied       # en: tied, not a bit of the chain
    seen = []

    async def bench(ctx):
        await ctx.tick()
        seen.append(ctx.get(core.en))

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [int(tied)]      # the scan chain's bits start at 0


def test_a_time_limit_inside_another_never_extends_it(tmp_path):
    import sys
    import time

    sleep = [sys.executable, "-c", "import time; time.sleep(30)"]
    t0 = time.monotonic()
    with pytest.raises(tools.ToolError, match="time limit"):
        with tools.time_limit(1), tools.time_limit(60):
            tools.run(sleep, tmp_path / "sleep.log", "sleep")
    assert time.monotonic() - t0 < 20
    with pytest.raises(tools.ToolError, match="time limit of 0.0166667 min"):
        with tools.time_limit(60), tools.time_limit(1):       # the inner, shorter one holds
            tools.run(sleep, tmp_path / "sleep.log", "sleep")
