"""``accelsmith run`` from the command line: a checked GEMM, and bad input answered with one
paragraph, no traceback and no hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

CONFIG = "os_4x4_int8"


def _run(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "run", *args],
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(4)
    paths = {}
    for name, array in {"A": rng.integers(-128, 128, (11, 30)), "B": rng.integers(-128, 128, (30, 7)),
                        "B_short": rng.integers(-128, 128, (29, 7)), "A_big": np.full((4, 30), 300),
                        "A_float": rng.random((4, 30)), "A_3d": np.zeros((2, 2, 2), dtype=int)}.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    paths["A_pickled"] = tmp_path / "A_pickled.npy"
    np.save(paths["A_pickled"], np.array([[1, "x"]], dtype=object), allow_pickle=True)
    paths["AB"] = tmp_path / "AB.npz"
    np.savez(paths["AB"], A=np.ones((4, 4), dtype=int), B=np.ones((4, 4), dtype=int))
    paths["garbage"] = tmp_path / "garbage.npy"
    paths["garbage"].write_bytes(b"\x93NUMPY\x01\x00\xff\xff{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }")
    return paths


def test_run_checks_against_the_golden_model(files, tmp_path):
    out = tmp_path / "C.npy"
    code, stdout, stderr = _run(CONFIG, "--a", str(files["A"]), "--b", str(files["B"]),
                                "-o", str(out), "--check")
    assert code == 0, stdout + stderr
    assert "bit-exact" in stdout and "MACs/cycle" in stdout and "engine cycles" in stdout
    C = np.load(out)
    assert np.array_equal(C, np.load(files["A"]) @ np.load(files["B"]))
    # An .npz with named arrays.
    code, stdout, _ = _run(CONFIG, "--a", str(files["AB"]), "--b", str(files["AB"]), "--check")
    assert code == 0 and "bit-exact" in stdout


@pytest.mark.parametrize("case, pattern", [
    (("A", "B_short"), "A's columns must equal B's rows"),
    (("A_big", "B"), "outside the engine's s8 range"),
    (("A_float", "B"), "integers are needed"),
    (("A_3d", "B"), "2-D matrix"),
    (("A_pickled", "B"), "never unpickled"),
    (("missing", "B"), "does not exist"),
    (("garbage", "B"), "not a valid .npy"),
])
def test_bad_input_is_one_clear_error(files, tmp_path, case, pattern):
    a = str(files.get(case[0], tmp_path / "missing.npy"))
    code, stdout, stderr = _run(CONFIG, "--a", a, "--b", str(files[case[1]]))
    assert code != 0
    assert "Traceback" not in stderr and pattern in stderr, stderr


def test_non_nm_a_is_refused_without_prune(files):
    code, _, stderr = _run("sparse_nm2of4_4x4_int8", "--a", str(files["A"]), "--b", str(files["B"]))
    assert code == 2 and "--prune" in stderr and "Traceback" not in stderr


def test_a_port_that_does_not_answer(files):
    # Nothing listening: refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code, _, stderr = _run(CONFIG, "--a", str(files["A"]), "--b", str(files["B"]), "--port",
                           f"socket://127.0.0.1:{closed}", timeout=60)
    assert code == 1 and "cannot open" in stderr and "Traceback" not in stderr
    # Something listening that never answers: the identification read times out.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held = []
    thread = threading.Thread(target=lambda: held.append(server.accept()), daemon=True)
    thread.start()
    try:
        code, _, stderr = _run(CONFIG, "--a", str(files["A"]), "--b", str(files["B"]), "--port",
                               f"socket://127.0.0.1:{port}", "--timeout", "1", timeout=60)
    finally:
        server.close()
    assert code == 1 and "no answer to the identification read" in stderr
    assert "Traceback" not in stderr


def test_generate_soc_writes_a_lint_clean_soc_and_csr_csv(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "generate", CONFIG, "--soc",
                           "--lint", "-o", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": clean") == 2
    csv = (tmp_path / "csr.csv").read_text()
    assert "csr_register,seq_status,0x00000104,1,ro" in csv
    assert any(p.name.endswith("_soc.manifest.json") for p in tmp_path.iterdir())
