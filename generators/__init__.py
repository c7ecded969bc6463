"""One generator per family: validated config -> Amaranth top-level component + manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["Design", "ports_of", "write_design"]


@dataclass
class Design:
    """A generated top level: the component, its Verilog module name and its manifest."""

    top: str
    component: wiring.Component
    manifest: dict

    def verilog(self) -> str:
        return verilog.convert(self.component, name=self.top, emit_src=False)


def ports_of(component: wiring.Component) -> list[dict]:
    """The Verilog ports Amaranth emits for a component (``clk``/``rst`` plus its signature)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": len(value.as_value() if hasattr(value, "as_value") else value)})
    return ports


def write_design(design: Design, outdir: str | Path) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.manifest.json`` into ``outdir``; returns both paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    v_path = outdir / f"{design.top}.v"
    m_path = outdir / f"{design.top}.manifest.json"
    v_path.write_text(design.verilog())
    manifest = dict(design.manifest, verilog=v_path.name)
    m_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return v_path, m_path
