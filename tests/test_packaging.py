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
    assert "accelsmith/hdl/sim_models/MULT18X18D.v" in names     # the flows simulate ECP5 DSPs with it
    assert "accelsmith/configs/os_4x4_int8.yaml" in names


def _unresolved(args, cwd) -> list[str]:
    """Import diagnostics of basedpyright (pyright's engine) for accelsmith.* modules."""
    import json

    tool = shutil.which("basedpyright")
    assert tool, "basedpyright comes with the dev extra: pip install -e '.[dev]'"
    proc = subprocess.run([tool, "--outputjson", *args], capture_output=True, text=True, cwd=cwd)
    report = json.loads(proc.stdout)
    assert report["summary"]["filesAnalyzed"] > 0, proc.stdout[-2000:]
    return [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
            for d in report["generalDiagnostics"]
            if d.get("rule") == "reportMissingImports" and "accelsmith" in d["message"]]


def test_subpackages_are_on_disk_where_their_names_say():
    """No import hook or package-dir mapping: accelsmith.X is the folder accelsmith/X."""
    for sub in SUBPACKAGES:
        assert (ROOT / "accelsmith" / sub / "__init__.py").is_file(), sub
    assert (ROOT / "accelsmith" / "models" / "gaussian" / "__init__.py").is_file()


def test_static_tools_resolve_the_plain_checkout(tmp_path):
    """pyright on the checkout, with an interpreter that has no accelsmith installed: every
    accelsmith.* import of the project's own code resolves from the files on disk."""
    import venv

    venv.create(tmp_path / "bare", with_pip=False)
    missing = _unresolved(["--pythonpath", str(tmp_path / "bare" / "bin" / "python")], ROOT)
    assert not missing, "\n".join(missing[:20])


def test_static_tools_resolve_the_installed_package(tmp_path):
    """A user's own file elsewhere, analysed against this interpreter (where the package is
    installed, editable or not): every subpackage of accelsmith resolves."""
    user = tmp_path / "user_code.py"
    user.write_text("".join(f"import accelsmith.{sub}\n" for sub in SUBPACKAGES)
                    + "from accelsmith.hdl.csr import RegisterFile\n"
                    + "from accelsmith.models.gaussian.fixed import render_fixed\n")
    missing = _unresolved(["--pythonpath", sys.executable, str(user)], tmp_path)
    assert not missing, "\n".join(missing)
