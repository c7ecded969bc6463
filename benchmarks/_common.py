"""Shared helpers for the benchmark scripts: paths, machine description, JSON + markdown output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RESULTS = ROOT / "docs" / "results"
SKY130 = ROOT.parent / "shared" / "data" / "sky130hd_tt.lib.gz"


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}


def progress(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write(name: str, data: dict, table: str, command: str):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(
        f"# {data['title']}\n\nMeasured with `{command}` on {data['machine']['date']} "
        f"({data['machine']['cpus']} CPUs, Python {data['machine']['python']}); raw data in "
        f"`{name}.json`.\n\n{table}\n")
    progress(f"wrote {RESULTS / (name + '.md')}")
