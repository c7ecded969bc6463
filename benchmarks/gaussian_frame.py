"""Whole garden frames through the rasteriser's SoC (the native Verilator model and the same
driver a board uses): every tile of every camera, checked bit for bit against ``render_fixed``
and cycle for cycle against the cycle model, with the PSNR against the float sorted render;
the sorter network's weights come from the hardware's network mode (checked against
``mlp_fixed``).

Writes ``docs/results/gaussian_frame.json`` and ``.md``, the frame of each camera as
``gaussian_frame_cam<N>.png`` and beside the float sorted reference as
``gaussian_frame_cam<N>_side_by_side.png``.

    python benchmarks/gaussian_frame.py [--config gaussian_16lanes_coverage] [--cameras 0 1 2]
        [--sorter docs/results/gaussian_sorter_coverage_mlp.npz] [--scene ...test_garden.npz]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from _common import RESULTS, ROOT, machine, progress, write
from accelsmith.config import load
from accelsmith.models.gaussian import fixed
from accelsmith.models.gaussian.metrics import psnr
from accelsmith.models.gaussian.pipeline import fixed_view, load_scene, to_uint8
from accelsmith.models.gaussian.render import bin_tiles, project, render_sorted
from accelsmith.models.gaussian.schedule import count_fetches, tile_order
from accelsmith.models.gaussian.sorter import SorterMLP
from accelsmith.sw_driver.accelerator import Accelerator

SCENE = ROOT.parent / "shared" / "data" / "test_garden.npz"
SORTER = RESULTS / "gaussian_sorter_coverage_mlp.npz"


def _save(img: np.ndarray, path):
    from PIL import Image

    Image.fromarray(img).save(path)


def frame(acc, scene, cam, index: int, sorter, blend: str) -> dict:
    bins, fv, w_model = fixed_view(scene, cam, sorter)
    started = time.monotonic()

    def report(what):
        return lambda done, total: progress(f"camera {index}: {what} {done}/{total}, "
                                            f"{time.monotonic() - started:.0f} s")

    q = fixed.quantise_mlp(SorterMLP.load(sorter))
    net = acc.network_weights(q, fv.features, progress=report("Gaussians"))
    w_q = net.w_q
    result = acc.rasterise(bins, fv, w_q, (0, 0, 0), progress=report("tiles"))
    ref = fixed.render_fixed(bins, fv, w_q, blend)
    sorted_ref = render_sorted(bin_tiles(project(scene, cam)))
    img = fixed.to_float(result.image_q)
    _save(to_uint8(img), RESULTS / f"gaussian_frame_cam{index}.png")
    _save(np.concatenate([to_uint8(img), to_uint8(sorted_ref)], axis=1),
          RESULTS / f"gaussian_frame_cam{index}_side_by_side.png")
    return {"camera": index, "width": cam.width, "height": cam.height,
            "gaussians": len(bins.proj), "tiles": result.tiles, "entries": result.entries,
            "pairs_full": result.pairs, "engine_cycles": result.engine_cycles,
            "model_cycles": result.model_cycles, "bound_cycles": result.bound_cycles,
            "soc_cycles": result.cycles, "runs": result.runs,
            "bytes_on_link": result.bytes_sent + result.bytes_received,
            "wall_seconds": round(result.wall_seconds, 1),
            "order": result.order, "buffer": acc.engine["geometry"].get("buffer", 0),
            "fetches": result.fetches,
            "model_fetches": count_fetches(bins, np.array(
                tile_order(result.order, bins.proj.tiles_x, bins.proj.tiles_y)),
                acc.engine["geometry"].get("buffer", 0)) if acc.engine["geometry"].get("buffer")
            else result.entries,
            "network_cycles": net.engine_cycles, "network_model_cycles": net.model_cycles,
            "network_bit_exact": bool(np.array_equal(w_q, w_model)),
            "network_wall_seconds": round(net.wall_seconds, 1),
            "bit_exact": bool(np.array_equal(result.image_q, ref)),
            "cycle_exact": result.engine_cycles == result.model_cycles,
            "psnr_vs_sorted_db": round(psnr(img, sorted_ref), 2)}


def markdown(data: dict) -> str:
    rows = ["| camera | Gaussians | network cycles (model) | weights = mlp_fixed | tiles | entries | "
            "records fetched (count_fetches) | rasteriser cycles | cycle model | without "
            "skipping | frame = render_fixed | PSNR vs sorted float | bytes on the link | wall s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    yes = lambda ok: "yes" if ok else "NO"      # noqa: E731
    for r in data["frames"]:
        rows.append(f"| {r['camera']} | {r['gaussians']:,} | {r['network_cycles']:,} "
                    f"({r['network_model_cycles']:,}) | {yes(r['network_bit_exact'])} | "
                    f"{r['tiles']:,} | {r['entries']:,} | {r['fetches']:,} ({r['model_fetches']:,}) | "
                    f"{r['engine_cycles']:,} | "
                    f"{r['model_cycles']:,} | {r['bound_cycles']:,} | {yes(r['bit_exact'])} | "
                    f"{r['psnr_vs_sorted_db']:.2f} dB | {r['bytes_on_link']:,} | "
                    f"{r['wall_seconds'] + r['network_wall_seconds']:.0f} |")
    pics = "\n\n".join(f"Camera {r['camera']}, the hardware's frame (left) and the float sorted "
                       f"reference (right):\n\n![camera {r['camera']}](gaussian_frame_cam"
                       f"{r['camera']}_side_by_side.png)" for r in data["frames"])
    return (f"Config `{data['config']}` ({data['top']}), sorter `{data['sorter']}`, scene "
            f"`{data['scene']}`, background black. Each frame ran through the SoC's native "
            f"Verilator model with the driver's checked transfers (CRC-32 both ways): first every "
            f"Gaussian in view through the network mode (the sorter on the lanes' multipliers), "
            f"then every tile with those weights, in {data['frames'][0]['order']} order through a "
            f"Gaussian buffer of {data['frames'][0]['buffer']} records (a resident Gaussian's "
            f"entry is its first 32-bit word alone on the link, a fetched one all eight). Bytes on the link: "
            f"the tiles' runs (the network's runs add about 41 bytes per Gaussian).\n\n" + "\n".join(rows) + "\n\n" + pics)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="gaussian_16lanes_coverage")
    ap.add_argument("--cameras", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sorter", default=str(SORTER))
    ap.add_argument("--scene", default=str(SCENE))
    args = ap.parse_args(argv)
    config = load(args.config)
    scene, cams = load_scene(args.scene)
    progress(f"building the SoC of {args.config} (native model cached after the first build)")
    with Accelerator.simulated(config) as acc:
        frames = [frame(acc, scene, cams[i], i, args.sorter, config.values["blend"])
                  for i in args.cameras]
        top = acc.manifest["top"]
    data = {"title": "Garden frames through the simulated rasteriser SoC", "machine": machine(),
            "config": args.config, "top": top, "scene": args.scene.split("/")[-1],
            "sorter": args.sorter.split("/")[-1], "frames": frames}
    write("gaussian_frame", data, markdown(data),
          "python benchmarks/gaussian_frame.py " + " ".join(sys.argv[1:]))
    return 0 if all(f["bit_exact"] and f["cycle_exact"] and f["network_bit_exact"]
                    and f["fetches"] == f["model_fetches"]
                    and f["network_cycles"] == f["network_model_cycles"] for f in frames) else 1


if __name__ == "__main__":
    sys.exit(main())
