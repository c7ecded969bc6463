"""`accelsmith sweep`: sweep files, their expansion and errors, and the Dask engine (a 2-worker
LocalCluster: a small sweep, its cache, a failing point, a worker killed mid-run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from accelsmith.cli import main
from accelsmith.config import safe_yaml
from accelsmith.flows.sweep import (SweepError, load_sweep, local_cluster, parse_sweep, run_sweep,
                                    step_key, sweep_schema, tool_versions)

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"
GENERATE = {"generate": {"lint": True, "time_limit_min": 5}}


def _sweep(axes, steps=GENERATE, **extra):
    return parse_sweep({"base": "os_4x4_int8", "axes": axes, "steps": steps, **extra}, "<test>")


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    cluster = local_cluster(2)
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_axes_cross_zip_ranges_and_left_out_points():
    sweep = _sweep([{"cross": {"rows": [2, 4], "cols": {"from": 2, "to": 8, "times": 2}}},
                    {"zip": {"a_bits": [4, 8], "b_bits": [4, 8]}},
                    {"cross": {"generate.lint": [True, False]}}],
                   exclude=[{"when": {"rows": 4, "cols": 8}, "reason": "too big for this study"}])
    assert len(sweep.points) == 2 * 3 * 2 * 2
    names = [p.axes for p in sweep.points]
    assert names[0] == {"rows": 2, "cols": 2, "a_bits": 4, "b_bits": 4, "generate.lint": True}
    left_out = [p for p in sweep.points if p.filtered]
    assert len(left_out) == 2 * 2 and all(p.axes["rows"] == 4 and p.axes["cols"] == 8 for p in left_out)
    assert all("too big for this study" in p.filtered for p in left_out)
    kept = [p for p in sweep.points if not p.filtered]
    assert all(p.values["rows"] == p.axes["rows"] and p.values["a_bits"] == p.axes["a_bits"] for p in kept)
    assert {p.steps["generate"]["lint"] for p in kept} == {True, False}
    # the step option is not a config key
    assert all("generate.lint" not in p.values for p in kept)


def test_cases_base_configs_and_list_rules():
    sweep = parse_sweep({
        "base": {"family": "bitweight", "max_k": 64},
        "axes": [{"cases": [{"architecture": "cube", "cube_n": 2},
                            {"architecture": "tree", "units": 2, "tree_k": 4, "synth.no_dsp": True}]},
                 {"cross": {"mac": ["baseline", "opt1", "opt2"]}}],
        "exclude": [{"when": {"mac": ["opt1", "opt2"], "pipeline": 0, "architecture": "tree"},
                     "reason": "tree: baseline only here"}],
        "steps": {"synth": {"targets": "asic"}}, "report": {"size": "tiny"}, "name": "mix"},
        "<test>")
    assert (sweep.name, sweep.report) == ("mix", {"size": "tiny"})
    by_name = {p.name(): p for p in sweep.points}
    cube = by_name["architecture=cube,cube_n=2,mac=opt1"]
    assert cube.values["cube_n"] == 2 and cube.values["max_k"] == 64 and "units" not in cube.values
    assert cube.steps["synth"]["targets"] == ["asic"] and not cube.steps["synth"].get("no_dsp")
    tree = by_name["architecture=tree,units=2,tree_k=4,synth.no_dsp=True,mac=baseline"]
    assert tree.values["tree_k"] == 4 and tree.steps["synth"]["no_dsp"] is True
    # the rule matches on a default (pipeline 0) and on any value of a list
    assert by_name["architecture=tree,units=2,tree_k=4,synth.no_dsp=True,mac=opt2"].filtered == \
        "excluded: tree: baseline only here"
    assert "rejected" in by_name["architecture=cube,cube_n=2,mac=opt2"].filtered   # no opt2 cube
    bases = parse_sweep({"base": "os_4x4_int8", "steps": GENERATE,
                         "axes": [{"cross": {"base": ["os_8x8_int8", "cube_8_int8"]}},
                                  {"cross": {"a_bits": [4, 8]}}]}, "<test>").points
    assert [(p.values["architecture"], p.values["a_bits"]) for p in bases] == [
        ("systolic_os", 4), ("systolic_os", 8), ("cube", 4), ("cube", 8)]
    assert bases[0].values["rows"] == 8 and bases[2].values["cube_n"] == 8


def test_points_the_config_schema_rejects_are_recorded_with_its_reason():
    sweep = _sweep([{"cross": {"mac": ["baseline", "opt3"]}}])
    ok, bad = sweep.points
    assert ok.filtered is None
    assert "rejected by the config schema" in bad.filtered and "opt3" in bad.filtered


def test_keys_follow_config_options_and_tools():
    versions = tool_versions()
    values = {"family": "bitweight", "rows": 2}
    key = step_key(values, "generate", {"lint": True, "time_limit_min": 5}, versions)
    assert key == step_key(dict(reversed(list(values.items()))), "generate",
                           {"time_limit_min": 9, "lint": True}, versions)  # limit: not a result
    assert key != step_key({**values, "rows": 4}, "generate", {"lint": True}, versions)
    assert key != step_key(values, "generate", {"lint": False}, versions)
    assert key != step_key(values, "generate", {"lint": True}, {**versions, "amaranth": "9.9"})
    # a new nextpnr touches synth only
    assert key == step_key(values, "generate", {"lint": True}, {**versions, "nextpnr-ecp5": "0"})
    # an edit to the driver re-runs workloads, not synthesis; one to the hardware both
    synth = step_key(values, "synth", {"targets": ["ecp5-85f"]}, versions)
    run = step_key(values, "run", {"m": 8}, versions)
    edited = {**versions, "accelsmith:run": "edited"}
    assert step_key(values, "synth", {"targets": ["ecp5-85f"]}, edited) == synth
    assert step_key(values, "run", {"m": 8}, edited) != run
    assert versions["accelsmith:synth"] != versions["accelsmith:run"]


def test_source_digests_cover_the_design_not_the_properties_or_the_engine():
    from accelsmith.flows import sweep as sweep_module

    root = Path(sweep_module.__file__).resolve().parents[1]
    for step, sources in sweep_module.STEP_SOURCES.items():
        assert all((root / s).exists() for s in sources), step
        assert "hdl" in sources and "flows/sweep.py" not in sources and "flows/prove.py" not in sources


def test_asic_keys_follow_the_liberty_content_not_its_path(tmp_path):
    versions = tool_versions()
    values = {"family": "bitweight", "rows": 2}
    libs = [tmp_path / name for name in ("a.lib", "b.lib", "c.lib")]
    for lib, text in zip(libs, ("library(x) {}", "library(x) {}", "library(y) {}")):
        lib.write_text(text)
    key = lambda lib, targets=("asic",): step_key(values, "synth", {"targets": list(targets),
                                                                   "liberty": str(lib)}, versions)
    assert key(libs[0]) == key(libs[1]) != key(libs[2])
    assert key(libs[0], ["ecp5-85f"]) != key(libs[0])


@pytest.mark.parametrize("raw, where, allowed", [
    ({"steps": GENERATE}, "base", "config file"),
    ({"base": "os_4x4_int8"}, "steps", "generate, sim, synth"),
    ({"base": "os_4x4_int8", "steps": {"place": {}}}, "steps.place", "allowed: generate"),
    ({"base": "os_4x4_int8", "steps": {"sim": {"vector": 5}}}, "steps.sim.vector", "allowed: simulator"),
    ({"base": "os_4x4_int8", "steps": {"sim": {"simulator": "xsim"}}}, "steps.sim.simulator", "verilator, icarus"),
    ({"base": "os_4x4_int8", "steps": {"generate": {"time_limit_min": 0}}}, "time_limit_min", "above 0"),
    ({"base": "os_4x4_int8", "steps": {"synth": {"targets": ["xc7"]}}}, "steps.synth.targets", "ecp5-85f"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": {"rows": [2]}}, "axes", "list of groups"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"rows": []}}]},
     "axes[0].cross.rows", "at least one value"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"zip": {"rows": [2, 4], "cols": [2]}}]},
     "axes[0].zip", "equal lengths"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"rows": {"from": 2, "to": 8}}}]},
     "axes[0].cross.rows", "one of 'step'"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"rows": {"from": 0, "to": 8, "times": 2}}}]},
     "axes[0].cross.rows", "starts at 1 or more"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"rows": [2]}}, {"cross": {"rows": [4]}}]},
     "axes[1].cross.rows", "already varied"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"sim.vectors": [5]}}]},
     "axes: sim.vectors", "does not run"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"generate.time_limit_min": [-1]}}]},
     "axes: generate.time_limit_min = -1", "above 0"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "exclude": [{"when": {"rows": 2}}]}, "exclude[0]", "reason"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cases": []}]}, "axes[0].cases", "non-empty list"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cases": [{"rows": [2, 4]}]}]},
     "axes[0].cases[0].rows", "not a number"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"rows": [2]}}, {"cases": [{"rows": 4}]}]},
     "axes[1].cases[0].rows", "already varied"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cases": [{"rows": 2}, {"sim.vectors": 9}]}]},
     "axes: sim.vectors", "does not run"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "axes": [{"cross": {"base": ["no_such_config"]}}]},
     "axes: base = 'no_such_config'", "no_such_config"),
    ({"base": "os_4x4_int8", "steps": {"synth": {"targets": "xc7"}}}, "steps.synth.targets", "ecp5-85f"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "report": [1]}, "report", "a mapping"),
    ({"base": "os_4x4_int8", "steps": {"run": {"m": 0}}}, "steps.run.m", "1 to 65,536"),
    ({"base": "os_4x4_int8", "steps": {"run": {"density": 1.5}}}, "steps.run.density", "at most 1"),
    ({"base": "os_4x4_int8", "steps": {"run": {"crop": "0,0,16"}}}, "steps.run.crop", "X,Y,WIDTH,HEIGHT"),
    ({"base": "os_4x4_int8", "steps": {"run": {"scene": "nowhere.npz"}}}, "steps.run.scene", "no such file"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "name": 5}, "name", "a name"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "retries": 99}, "retries", "0 to 10"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "workers": 4}, "workers", "allowed: base"),
    ({"base": "os_4x4_int8", "steps": GENERATE, "plots": [{"x": "a", "y": "b", "better": ["low", "high"]}]},
     "plots[0].better", "lower, higher"),
])
def test_malformed_sweeps_are_one_clear_error(raw, where, allowed):
    with pytest.raises(SweepError) as err:
        parse_sweep(raw, "bad.yaml")
    text = str(err.value)
    assert text.startswith("bad.yaml: ") and where in text and allowed in text


def test_malformed_sweep_files_fail_on_the_command_line_without_a_traceback(tmp_path, capsys):
    deep = tmp_path / "deep.yaml"
    deep.write_text("base: os_4x4_int8\nsteps: {generate: {}}\naxes:\n" + "".join(
        "  " * (n + 1) + "- \n" for n in range(12)))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("base: [unclosed\n")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 300_000 + "\n")
    for path, words in ((deep, "nested more than"), (bad_yaml, "not valid YAML"),
                        (big, "a sweep file is at most"), (tmp_path / "none.yaml", "no such file")):
        assert main(["sweep", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}") and words in err and "Traceback" not in err


def test_shipped_sweeps_and_the_schema_agree():
    schema = sweep_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted(SWEEPS.glob("*.yaml"))
    assert files
    for path in files:
        raw = safe_yaml(path.read_text(), str(path), 8)
        jsonschema.validate(raw, schema)
        assert load_sweep(path).points
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"base": "x", "steps": {"generate": {"lint": "yes"}}}, schema)


def test_small_sweep_on_two_workers_then_all_from_the_cache(tmp_path, client):
    sweep = load_sweep(SWEEPS / "os_small.yaml")
    assert len(sweep.points) == 8 and set(sweep.steps) == {"generate", "sim"}
    run = run_sweep(sweep, tmp_path, client=client, quiet=True)
    assert (run.computed, run.cached, run.failed) == (8, 0, 0)
    for p in sweep.points:
        rec = run.records[p.index]
        assert rec["generate"]["result"]["lint"] == "clean"
        assert rec["sim"]["result"]["passed"] is True and rec["sim"]["result"]["vectors"] == 50
        assert rec["generate"]["result"]["macs_per_cycle"] == p.axes["rows"] * p.axes["cols"]
    table = (tmp_path / "sweep.csv").read_text().splitlines()
    assert len(table) == 9 and table[0].startswith("rows,cols,max_k,status")
    files = sorted((tmp_path / "results").rglob("*.json"))
    assert len(files) == 16
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = run_sweep(load_sweep(SWEEPS / "os_small.yaml"), tmp_path, client=client, quiet=True)
    assert (again.computed, again.cached, again.failed) == (0, 8, 0)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    report = (tmp_path / "sweep.md").read_text()
    assert report.count("| ok |") == 8
    # the sweep file's plot: its front listed (a row per front point) and drawn
    assert "## Pareto front: sim.cycles" in report and (tmp_path / "pareto_generate.macs_per_cycle_sim.cycles.png").stat().st_size > 5000


def test_run_step_drives_a_gemm_through_the_driver(tmp_path, client):
    """A GEMM on each point's SoC (native Verilator model), bit-exact against the golden model
    and cycle-exact against the engine's cycle model; an N:M engine gets its A pruned."""
    sweep = parse_sweep({"base": {}, "axes": [{"cases": [
        {"family": "bitweight", "architecture": "systolic_os", "rows": 2, "cols": 2},
        {"family": "sparse", "format": "nm", "n": 2, "m": 4, "groups": 1, "rows": 2, "cols": 2}]}],
        "steps": {"run": {"m": 8, "k": 16, "n": 8, "seed": 5, "time_limit_min": 10}}}, "<test>")
    run = run_sweep(sweep, tmp_path, client=client, quiet=True)
    assert run.failed == 0 and run.computed == 2
    for records in run.records.values():
        result = records["run"]["result"]
        assert result["bit_exact"] is True and (result["m"], result["k"], result["n"]) == (8, 16, 8)
        assert result["engine_cycles"] == result["model_cycles"] > 0
        assert 0 < result["utilisation"] <= 1
    dense, nm = (run.records[p.index]["run"]["result"] for p in sweep.points)
    assert nm["engine_cycles"] < dense["engine_cycles"]       # half of A's K is skipped


def test_pareto_front():
    from accelsmith.flows.sweep import pareto_front

    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (2, 3)]
    assert pareto_front(pts) == [0, 1, 3, 4]                  # (3, 4) is beaten by (2, 3)
    assert pareto_front(pts, ("higher", "lower")) == [3]      # (4, 1) beats every other point
    assert pareto_front(pts, ("higher", "higher")) == [0, 2, 3]


def test_a_failing_point_is_recorded_and_the_others_kept(tmp_path, client):
    # The second point's generate step cannot finish within its limit (0.06 s): killed, retried
    # once, recorded; the first point's result stands, and a re-run retries only the failure.
    sweep = _sweep([{"zip": {"rows": [2, 3], "generate.time_limit_min": [5, 0.001]}}], retries=1)
    run = run_sweep(sweep, tmp_path, client=client, quiet=True)
    good, bad = (run.records[p.index]["generate"] for p in sweep.points)
    assert good["ok"] and good["result"]["lint"] == "clean"
    assert not bad["ok"] and "time limit" in bad["error"] and bad["attempts"] == 2
    assert run.failed == 1 and "failed: generate" in (tmp_path / "sweep.md").read_text()
    again = run_sweep(sweep, tmp_path, client=client, quiet=True)
    assert (again.cached, again.computed, again.failed) == (1, 1, 1)


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, client):
    sweep = _sweep([{"cross": {"rows": [2, 3, 4], "cols": [2, 3]}}])
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        run=run_sweep(sweep, tmp_path, client=client, quiet=True)))
    thread.start()
    deadline = time.monotonic() + 120
    while not any(client.processing().values()):
        assert time.monotonic() < deadline, "no point started"
        time.sleep(0.05)
    busy = next(w for w, keys in client.processing().items() if keys)
    pid = client.run(os.getpid, workers=[busy])[busy]
    os.kill(pid, signal.SIGKILL)           # the nanny starts a new worker; Dask re-runs its point
    thread.join(timeout=300)
    assert not thread.is_alive()
    run = result["run"]
    assert (run.computed, run.failed) == (6, 0)
    assert len(list((tmp_path / "results" / "generate").glob("*.json"))) == 6


def test_sweep_command_runs_and_reports(tmp_path):
    sweep = tmp_path / "one.yaml"
    sweep.write_text("base: os_4x4_int8\naxes:\n  - cross: {rows: [2]}\nsteps:\n  generate: {lint: false}\n")
    out = subprocess.run([sys.executable, "-m", "accelsmith.cli", "sweep", str(sweep), "-o",
                          str(tmp_path / "out"), "--workers", "1"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 points in" in out.stdout and "1 computed" in out.stdout
    assert "[sweep] 1/1 points: 1 done" in out.stderr
    rec = json.loads(next((tmp_path / "out" / "results" / "generate").glob("*.json")).read_text())
    assert rec["ok"] and rec["point"] == {"rows": 2} and rec["config"]["rows"] == 2


def test_sweep_on_an_existing_scheduler(tmp_path, client):
    # --scheduler ADDRESS: the sweep's own client on the cluster's workers, which outlive it
    sweep = _sweep([{"cross": {"rows": [2, 4]}}])
    run = run_sweep(sweep, tmp_path, scheduler=client.scheduler.address, quiet=True)
    assert (run.computed, run.failed) == (2, 0)
    assert len(client.scheduler_info()["workers"]) == 2


def test_an_interrupted_sweep_resumes_from_its_finished_points(tmp_path, client):
    sweep_file = tmp_path / "six.yaml"
    sweep_file.write_text("base: os_4x4_int8\naxes:\n  - cross: {rows: [2, 3, 4], cols: [2, 3]}\n"
                          "steps:\n  generate: {lint: true}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "accelsmith.cli", "sweep", str(sweep_file), "-o",
                             str(out), "--workers", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    results = out / "results" / "generate"
    deadline = time.monotonic() + 240
    while not (results.is_dir() and any(results.glob("*.json"))):
        assert proc.poll() is None and time.monotonic() < deadline, "no point finished"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)     # the sweep, its cluster and its tools, at once
    proc.wait(timeout=60)
    finished = len(list(results.glob("*.json")))
    assert 1 <= finished < 6
    run = run_sweep(load_sweep(sweep_file), out, client=client, quiet=True)
    assert (run.cached, run.computed, run.failed) == (finished, 6 - finished, 0)
