"""A built wheel holds every subpackage of the accelsmith namespace and its data files."""

import shutil
import subprocess
import sys
import zipfile

from .conftest import ROOT

SUBPACKAGES = ["hdl", "generators", "models", "testbench", "flows", "sw_driver", "configs",
               "constraints"]


def test_wheel_contains_every_subpackage(tmp_path):
    # Build from a copy so setuptools' build/ folder never lands in the source tree.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".git", ".pytest_cache"))
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path),
                           str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheel = next(tmp_path.glob("accelsmith-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "accelsmith/__init__.py" in names and "accelsmith/cli.py" in names
    for sub in SUBPACKAGES:
        assert f"accelsmith/{sub}/__init__.py" in names, sub
    assert "accelsmith/hdl/tensor_cores.py" in names
    assert "accelsmith/config.schema.json" in names
    assert "accelsmith/configs/os_4x4_int8.yaml" in names
