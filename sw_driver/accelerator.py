"""One driver class for a generated SoC on any transport: simulation, serial port, socket.

:class:`Accelerator` reads the SoC manifest (or rebuilds it from the config), checks the
identification registers, and runs workloads: :meth:`Accelerator.gemm` tiles a GEMM of any
size onto the engine, streams it through the SoC's buffers in runs that the SoC's sequencer
executes on its own, checks every transfer against the SoC's CRC-32 registers, and returns C
with the golden model's semantics.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from accelsmith.models.sparse import NMGeometry

from .gemm import GemmError, TileJob, check_operand, dims, geometry_of, golden, plan, prepare_a
from .transport import Transport, TransportError

__all__ = ["DriverError", "IdentityError", "EngineError", "ChecksumError", "GemmResult",
           "Accelerator"]


class DriverError(RuntimeError):
    """The hardware did not do what was asked; the message says what and where."""


class IdentityError(DriverError):
    """The hardware on the transport is not the SoC of this config."""


class EngineError(DriverError):
    """The engine flagged a job (STATUS.ERROR: malformed sparse metadata)."""

    def __init__(self, message: str, tiles: list[tuple[int, int]]):
        super().__init__(message)
        self.tiles = tiles


class ChecksumError(DriverError):
    """What the SoC received or sent differs from what the host sent or received."""


@dataclass
class GemmResult:
    """C and how the hardware got there."""

    C: np.ndarray
    cycles: int                 # SoC sequencer cycles of all runs (engine plus job overhead)
    engine_cycles: int          # sum of the engine's CYCLES over every job
    macs: int                   # useful multiply-accumulates (M * N * K)
    peak_macs_per_cycle: float
    jobs: int
    runs: int
    wall_seconds: float
    bytes_sent: int
    bytes_received: int
    retries: int = 0
    model_cycles: int = 0       # the engines' cycle models, summed over jobs (stall-free)
    notes: list[str] = field(default_factory=list)

    @property
    def macs_per_cycle(self) -> float:
        return self.macs / self.engine_cycles if self.engine_cycles else 0.0

    def summary(self) -> str:
        return (f"{self.C.shape[0]}x{self.C.shape[1]} result, {self.jobs} jobs in {self.runs} "
                f"runs: {self.engine_cycles} engine cycles ({self.cycles} with job overhead), "
                f"{self.macs_per_cycle:.2f} MACs/cycle of {self.peak_macs_per_cycle:g} peak "
                f"({100 * self.macs_per_cycle / self.peak_macs_per_cycle:.1f} %), "
                f"{self.wall_seconds:.2f} s wall, {self.bytes_sent + self.bytes_received} bytes "
                f"on the link" + (f", {self.retries} retries" if self.retries else ""))


def _crc(words: np.ndarray, value: int = 0) -> int:
    return zlib.crc32(np.asarray(words, dtype="<u4").tobytes(), value)


def _beat_words(beats: list[int], words_per_beat: int) -> np.ndarray:
    """Beats (integers up to words_per_beat * 32 bits) as 32-bit words, least significant first."""
    out = np.zeros((len(beats), words_per_beat), dtype=np.uint32)
    for lane in range(words_per_beat):
        shift = 32 * lane
        out[:, lane] = [(b >> shift) & 0xFFFFFFFF for b in beats]
    return out.reshape(-1)


def _soc_of(config):
    """The SoC design of a :class:`~accelsmith.config.Config` or a config path / name."""
    from accelsmith.config import Config, load
    from accelsmith.generators.soc import build_soc
    from accelsmith.registry import generator

    config = config if isinstance(config, Config) else load(config)
    return build_soc(generator(config.family).build(config))


class Accelerator:
    """A generated SoC behind a :class:`Transport`.

    ``soc_manifest`` is what ``generate --soc`` writes (``<top>_soc.manifest.json``). Registers
    are named as in ``csr.csv`` (``seq_status``, ``engine_k_steps``...). ``retries`` bounds how
    often a run is redone after a transfer fails its checksum or the link drops a reply.
    """

    def __init__(self, soc_manifest: dict, transport: Transport, *, retries: int = 3,
                 check_identity: bool = True, link_timeout: float = 5.0):
        if soc_manifest.get("kind") != "soc":
            raise DriverError("the manifest is an engine's, not a SoC's: generate it with "
                              "'accelsmith generate CONFIG --soc'")
        self.manifest = soc_manifest
        self.soc = soc_manifest["soc"]
        self.engine = soc_manifest["engine"]
        # The tensor families' GEMM geometry; the rasteriser has none (sw_driver.gaussian).
        self.geometry = None if self.engine["family"] == "gaussian" else geometry_of(self.engine)
        self.transport = transport
        self.retries = retries
        self.registers = {r["name"]: r for r in self.soc["registers"]}
        self.buffers = self.soc["buffers"]
        self.clock_hz = self.soc["clock_hz"]
        self.watchdog_cycles = self.soc["watchdog_cycles"]
        self.watchdog_seconds = self.watchdog_cycles / self.clock_hz
        rate = transport.bytes_per_second
        # A frame must finish within half the watchdog time: 6 header bytes + 4 per word on the
        # link, and at the bridge's pace at least (a link as fast as its clock, in simulation).
        burst = min(255, int((self.watchdog_cycles / 2 - 6) // self.soc["bridge"]["read_cycles_per_word"]))
        if rate is not None:
            burst = min(burst, int((self.watchdog_seconds / 2 * rate - 6) // 4))
        if burst < 1:
            link = "the bridge" if rate is None else f"the link ({rate:.0f} bytes/s)"
            raise DriverError(f"{link} cannot carry one word within the bridge watchdog "
                              f"({self.watchdog_seconds * 1e3:.3g} ms, {self.watchdog_cycles} cycles)")
        self.bus = transport.frames(burst, link_timeout)
        self.link_retries = 0
        if check_identity:
            self.check_identity()

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def simulated(cls, config, *, max_cycles: int = 1 << 34, quiet: bool = False, **kwargs):
        """The SoC of ``config`` (a :class:`~accelsmith.config.Config` or a path) as a native
        Verilator model in this process; built on first use, then cached."""
        from accelsmith.flows.native import NativeSoC, SimTransport, build_native

        soc = _soc_of(config)
        lib = build_native(soc.verilog(), soc.top, quiet=quiet)
        return cls(soc.manifest, SimTransport(NativeSoC(lib), max_cycles), **kwargs)

    @classmethod
    def open(cls, config, url: str, baudrate: int = 115200, **kwargs):
        """The SoC of ``config`` behind a pyserial URL (a board's UART, ``socket://`` of
        ``accelsmith sim-server``) or ``etherbone://HOST:PORT`` (a ``litex_server``)."""
        from .etherbone import EtherboneTransport
        from .transport import SerialTransport

        soc = _soc_of(config)
        link = EtherboneTransport(url) if url.startswith("etherbone://") else \
            SerialTransport(url, baudrate)
        return cls(soc.manifest, link, **kwargs)

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- registers -----------------------------------------------------------------------------

    def _reg(self, name: str) -> dict:
        try:
            return self.registers[name]
        except KeyError:
            raise DriverError(f"no register {name!r}; the SoC has "
                              f"{', '.join(self.registers)}") from None

    def read(self, name: str) -> int:
        return self.bus.read(self._reg(name)["byte_address"])[0]

    def write(self, name: str, value: int):
        self.bus.write(self._reg(name)["byte_address"], [value])

    def field(self, register: str, name: str) -> int:
        """The mask of a register field, e.g. ``field("seq_ctrl", "START")``."""
        for f in self._reg(register)["fields"]:
            if f["name"] == name:
                return ((1 << f["width"]) - 1) << f["offset"]
        raise DriverError(f"register {register} has no field {name}")

    def check_identity(self):
        """Refuse hardware that is not this config's SoC (magic, version, config hash, sizes)."""
        for attempt in range(self.retries + 1):
            try:
                got = self.bus.read(self._reg("ident_magic")["byte_address"], 8)
                break
            except TransportError as exc:
                if attempt == self.retries:
                    raise IdentityError(f"{self.transport.name}: no answer to the identification "
                                        f"read ({exc}); is the SoC there and the baud rate "
                                        f"right?") from None
                self.link_retries += 1
                self.transport.recover(self.watchdog_seconds, self.watchdog_cycles)
        want = [self.soc["magic"], self.soc["version"], self.soc["config_hash"],
                self.buffers["a"]["depth"], self.buffers["b"]["depth"],
                self.buffers["c"]["depth"], self.buffers["jobs"]["depth"], self.watchdog_cycles]
        if got[0] != want[0]:
            raise IdentityError(f"{self.transport.name}: magic {got[0]:#010x}, not an accelsmith "
                                f"SoC ({want[0]:#010x})")
        if got[1] != want[1]:
            raise IdentityError(f"{self.transport.name}: register map version {got[1]}, this "
                                f"driver speaks version {want[1]}")
        if got[2:] != want[2:]:
            raise IdentityError(
                f"{self.transport.name}: the hardware was built from another config (config hash "
                f"{got[2]:#010x}, buffers {got[3:7]}, watchdog {got[7]}; this config: "
                f"{want[2]:#010x}, {want[3:7]}, {want[7]}). Rebuild it from this config or "
                f"pass the config it was built from.")

    # -- GEMM ----------------------------------------------------------------------------------

    def gemm(self, A, B, *, prune: bool = False,
             progress: Callable[[int, int], None] | None = None) -> GemmResult:
        """``C = A @ B`` on the hardware, with the golden model's semantics (wrap-around in the
        accumulator format). A: dense, or on N:M engines an ``NMMatrix`` (a dense A must be N:M
        unless ``prune``). ``progress(done, total)`` is called after every run with jobs done."""
        start = time.monotonic()
        g = self._gemm_geometry()
        A = prepare_a(g, A, prune)
        B = check_operand("B", B, g.b_fmt)
        M, K = dims(A)
        if B.shape[0] != K:
            raise GemmError(f"A is {M}x{K} and B is {B.shape[0]}x{B.shape[1]}: A's columns "
                            f"must equal B's rows")
        N = B.shape[1]
        sent0, received0 = self.bus.bytes_sent, self.bus.bytes_received
        retries0 = self.link_retries
        mt, nt = g.m_tile, g.n_tile
        tiles_i = -(-M // mt)
        C = np.zeros((tiles_i * mt, -(-N // nt) * nt), dtype=np.int64)
        jobs = list(plan(g, A, B, self.buffers["a"]["depth"], self.buffers["b"]["depth"]))
        totals = {"cycles": 0, "engine_cycles": 0, "runs": 0, "model": 0}
        done = 0
        for run in self._runs(jobs):
            rows, stats = self._execute(run)
            for index, job in enumerate(run):
                i, j = job.tile
                C[i * mt:(i + 1) * mt, j * nt:(j + 1) * nt] += rows[index]
            totals["cycles"] += stats["cycles"]
            totals["engine_cycles"] += stats["engine_cycles"]
            totals["model"] += self._model_cycles(run)
            totals["runs"] += 1
            done += len(run)
            if progress:
                progress(done, len(jobs))
        C = g.acc_fmt.wrap(C[:M, :N])
        return GemmResult(C, totals["cycles"], totals["engine_cycles"], M * N * K,
                          g.macs_per_cycle(), len(jobs), totals["runs"],
                          time.monotonic() - start, self.bus.bytes_sent - sent0,
                          self.bus.bytes_received - received0, self.link_retries - retries0,
                          totals["model"])

    def rasterise(self, bins, fv, w_q, background_q=(0, 0, 0), region=None, progress=None):
        """Render a binned view's tiles on a rasteriser SoC; see
        :func:`accelsmith.sw_driver.gaussian.rasterise`."""
        from .gaussian import rasterise

        if self.engine["family"] != "gaussian":
            raise DriverError(f"{self.manifest['top']} is a {self.engine['family']} SoC: it runs "
                              f"GEMMs (Accelerator.gemm), it does not rasterise")
        return rasterise(self, bins, fv, w_q, background_q, region, progress)

    def network_weights(self, q, features, progress=None):
        """The sorter network's weights on a rasteriser SoC's network mode; see
        :func:`accelsmith.sw_driver.gaussian.network_weights`."""
        from .gaussian import network_weights

        if self.engine["family"] != "gaussian":
            raise DriverError(f"{self.manifest['top']} is a {self.engine['family']} SoC: it has "
                              f"no sorter network")
        return network_weights(self, q, features, progress)

    def golden(self, A, B, prune: bool = False) -> np.ndarray:
        """What :meth:`gemm` must return (the NumPy model)."""
        g = self._gemm_geometry()
        return golden(g, prepare_a(g, A, prune), check_operand("B", B, g.b_fmt))

    def _gemm_geometry(self):
        if self.geometry is None:
            raise DriverError(f"{self.manifest['top']} is a {self.engine['family']} SoC: it "
                              f"renders tiles (Accelerator.rasterise), it does not run GEMMs")
        return self.geometry

    @property
    def _tiles_register(self) -> bool:
        return "engine_tiles" in self.registers

    def _model_cycles(self, run: list[TileJob]) -> int:
        """The engine cycles a run takes by the cycle models, without stalls."""
        if self._tiles_register:
            return self.geometry.job_cycles(run[0].steps, len(run))
        return sum(job.cycles for job in run)

    def _runs(self, jobs: list[TileJob]):
        """Group tile jobs into runs that fit the buffers. Engines with a TILES register take a
        run as one engine job of many tiles, so a run's tiles share one K_STEPS."""
        a_cap, b_cap = self.buffers["a"]["depth"], self.buffers["b"]["depth"]
        c_cap, j_cap = self.buffers["c"]["depth"], self.buffers["jobs"]["depth"]
        mt = self.geometry.m_tile
        run: list[TileJob] = []
        a = b = 0
        for job in jobs:
            fits = (a + len(job.a_words) <= a_cap and b + len(job.b_words) <= b_cap
                    and (len(run) + 1) * mt <= c_cap and len(run) < j_cap
                    and not (self._tiles_register and run and run[0].steps != job.steps))
            if run and not fits:
                yield run
                run, a, b = [], 0, 0
            run.append(job)
            a += len(job.a_words)
            b += len(job.b_words)
        if run:
            yield run

    def _execute(self, run: list[TileJob]) -> tuple[np.ndarray, dict]:
        """One run through the SoC, redone after link or checksum failures (bounded)."""
        return self.retrying(lambda: self._execute_once(run),
                             f"run of tiles {run[0].tile}..{run[-1].tile}")

    def retrying(self, attempt: Callable, what: str):
        """``attempt()``, redone after a link or checksum failure (at most ``retries`` times,
        the link recovered in between); :class:`DriverError` naming ``what`` after the last."""
        last = None
        for _ in range(self.retries + 1):
            try:
                return attempt()
            except (TransportError, ChecksumError) as exc:
                last = exc
                self.link_retries += 1
                self.transport.recover(self.watchdog_seconds, self.watchdog_cycles)
        raise DriverError(f"{what} failed {self.retries + 1} times on {self.transport.name}; "
                          f"last: {last}")

    def _execute_once(self, run: list[TileJob]):
        g = self.geometry
        tiles = len(run) if self._tiles_register else 1
        job_steps = [run[0].steps] if self._tiles_register else [job.steps for job in run]
        words = {"a": self._beats("a", [w for job in run for w in job.a_words]),
                 "b": self._beats("b", [w for job in run for w in job.b_words]),
                 "jobs": np.asarray(job_steps, np.uint32)}
        setup = {"engine_tiles": tiles} if self._tiles_register else {}
        rows_expected = len(run) * g.m_tile
        c_words, regs = self.run_buffers(words, rows_expected,
                                         self._model_cycles(run) + 16 * len(run), setup)
        rows = self._decode_rows(c_words)
        error_job, error_count = regs["seq_error_job"], regs["seq_error_count"]
        # The engine flags whole jobs; on engines with TILES a job is the whole run, so the
        # tiles are named by their metadata, checked against the flag.
        flagged = [job for index, job in enumerate(run) if job.malformed]
        if error_count and flagged:
            tiles = [job.tile for job in flagged]
            raise EngineError(f"the engine flagged {len(tiles)} output tile(s) with STATUS.ERROR "
                              f"(malformed N:M metadata: indices not strictly ascending), first "
                              f"tile {tiles[0]} (tile row {tiles[0][0]}, column {tiles[0][1]}); "
                              f"the malformed groups contributed zero", tiles)
        if bool(error_count) != bool(flagged):
            where = run[error_job].tile if error_count else flagged[0].tile
            raise DriverError(f"the engine's STATUS.ERROR ({error_count} jobs, first at tile "
                              f"{where}) disagrees with the operands' metadata: a hardware fault")
        return rows, {"cycles": regs["seq_cycles"], "engine_cycles": regs["seq_engine_cycles"]}

    @staticmethod
    def _segments(beats: np.ndarray, whole: np.ndarray | None):
        """``(first beat, words)`` of the bursts that upload ``beats``: all of them at once, or
        (``whole``) each run of whole beats as one burst and each other beat's first word."""
        if whole is None:
            if len(beats):
                yield 0, beats.reshape(-1)
            return
        whole = np.asarray(whole, bool)
        n = 0
        while n < len(beats):
            if whole[n]:
                end = n + 1
                while end < len(beats) and whole[end]:
                    end += 1
                yield n, beats[n:end].reshape(-1)
                n = end
            else:
                yield n, beats[n, :1]
                n += 1

    def _beats(self, name: str, beats: list[int]) -> np.ndarray:
        """Integer beats as the 32-bit words of buffer ``name`` (least significant first)."""
        wpb = self.buffers[name]["words_per_beat"]
        return _beat_words(beats, wpb) if beats else np.zeros(0, np.uint32)

    def run_buffers(self, words: dict[str, np.ndarray], rows: int, predicted_cycles: int,
                    engine_setup: dict[str, int] | None = None,
                    whole: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
        """One run of the SoC's sequencer, the path every workload takes: ``words`` of the
        ``a``, ``b`` and ``jobs`` buffers (each ``words_per_beat`` words per beat, least
        significant first) are written and checked against WRITE_CRC, the run registers set and
        read back, ``engine_setup`` registers written (and read back), the run started and
        waited for (about ``predicted_cycles``), and ``rows`` C beats read back under READ_CRC.
        Returns the C words ``(rows, words_per_beat)`` and every sequencer register by name.
        ``whole[name]`` (a bool per beat): only those beats are sent whole, of the others only
        their first word (the rest is left as it was: beats whose first word says so, such as
        a Gaussian buffer's reuse beats). Link and checksum failures raise (:meth:`_execute`
        style callers retry)."""
        ctrl = lambda *names: sum(self.field("seq_ctrl", n) for n in names)
        self.write("seq_ctrl", ctrl("ABORT", "CLEAR_CRC"))
        counts = {}
        crc = 0
        for name in ("a", "b", "jobs"):
            wpb = self.buffers[name]["words_per_beat"]
            beats = np.asarray(words.get(name, np.zeros(0, np.uint32)), np.uint32).reshape(-1, wpb)
            counts[name] = len(beats)
            for start, data in self._segments(beats, (whole or {}).get(name)):
                self.bus.write(self.buffers[name]["base"] + 4 * wpb * start, data.tolist())
                crc = _crc(data, crc)
        self.bus.write(self._reg("seq_jobs")["byte_address"], [counts["jobs"], counts["a"],
                                                                 counts["b"]])
        for name, value in (engine_setup or {}).items():
            self.write(name, value)
        # One read back of the sequencer block: counts, checksum, and that nothing started.
        regs = self._read_seq_block()
        status, write_crc = regs["seq_status"], regs["seq_write_crc"]
        got = (regs["seq_jobs"], regs["seq_a_count"], regs["seq_b_count"])
        if write_crc != crc:
            raise ChecksumError(f"operands arrived corrupted (CRC {write_crc:#010x}, sent "
                                f"{crc:#010x})")
        if got != (counts["jobs"], counts["a"], counts["b"]):
            raise ChecksumError(f"run registers read back as {got[0]}, {got[1]}, {got[2]}")
        running = self.field("seq_status", "BUSY") | self.field("seq_status", "DONE")
        if status & running:
            raise ChecksumError(f"the sequencer started by itself (status {status:#x}): a "
                                f"corrupted frame")
        engine_status = self.read("engine_status")
        if engine_status & (self.field("engine_status", "BUSY") | self.field("engine_status", "DONE")):
            raise ChecksumError(f"the engine started by itself (status {engine_status:#x})")
        for name, value in (engine_setup or {}).items():
            if self.read(name) != value:
                raise ChecksumError(f"{name} read back wrong")

        self.write("seq_ctrl", ctrl("START"))
        self._wait_done(predicted_cycles)
        regs = self._read_seq_block()
        status, c_count = regs["seq_status"], regs["seq_c_count"]
        mask = lambda n: self.field("seq_status", n)
        if status & mask("REFUSED"):
            raise DriverError(f"the SoC refused the run ({counts['jobs']} jobs, {counts['a']} A "
                              f"and {counts['b']} B beats): more than its buffers hold")
        if c_count != rows or status & mask("OVERFLOW"):
            raise DriverError(f"the run wrote {c_count} result rows, {rows} expected "
                              f"(status {status:#x})")
        return self._download(rows), regs

    def _read_seq_block(self) -> dict[str, int]:
        """Every sequencer register in one burst, by name."""
        regs = sorted((r for r in self.soc["registers"] if r["block"] == "seq"),
                      key=lambda r: r["byte_address"])
        words = self.bus.read(regs[0]["byte_address"], len(regs))
        return {r["name"]: w for r, w in zip(regs, words)}

    def _wait_done(self, predicted_cycles: int):
        busy = self.field("seq_status", "BUSY")
        done = self.field("seq_status", "DONE")
        limit = max(4 * predicted_cycles + 100_000, 1_000_000)
        timeout = 2.0 + 4 * predicted_cycles / self.clock_hz
        deadline = time.monotonic() + timeout
        self.transport.settle(timeout, limit)
        while True:
            status = self.read("seq_status")
            if status & done and not status & busy:
                return
            if time.monotonic() > deadline:
                self.write("seq_ctrl", self.field("seq_ctrl", "ABORT"))
                raise DriverError(f"the run did not finish within {timeout:.1f} s (about "
                                  f"{predicted_cycles} cycles expected; status {status:#x}); "
                                  f"aborted")
            time.sleep(min(0.01, predicted_cycles / self.clock_hz))

    def _download(self, rows: int) -> np.ndarray:
        """``rows`` beats of the C buffer as words ``(rows, words_per_beat)``, under READ_CRC."""
        wpb = self.buffers["c"]["words_per_beat"]
        for attempt in range(self.retries + 1):
            self.write("seq_ctrl", self.field("seq_ctrl", "CLEAR_CRC"))
            words = np.array(self.bus.read(self.buffers["c"]["base"], rows * wpb), dtype=np.uint32)
            read_crc = self.read("seq_read_crc")
            if read_crc == _crc(words):
                return words.reshape(rows, wpb)
            self.link_retries += 1
        raise ChecksumError("result rows arrived corrupted on every attempt")

    def _decode_rows(self, lanes: np.ndarray) -> np.ndarray:
        """GEMM result rows (one C beat each) as ``(tiles, m_tile, n_tile)`` integers."""
        g = self.geometry
        rows, wpb = lanes.shape
        acc, n = g.acc_fmt, g.n_tile
        out = np.zeros((rows, n), dtype=np.int64)
        lanes = lanes.astype(object)
        mask = (1 << acc.bits) - 1
        for r in range(rows):
            value = 0
            for lane in range(wpb - 1, -1, -1):
                value = value << 32 | int(lanes[r, lane])
            last = (value >> (n * acc.bits)) & 1
            if last != (r % g.m_tile == g.m_tile - 1):
                raise DriverError(f"result row {r}: the 'last' flag is {last}; rows were lost "
                                  f"or reordered")
            out[r] = [(value >> (c * acc.bits)) & mask for c in range(n)]
        if acc.signed:
            out = np.where(out > acc.max, out - (1 << acc.bits), out)
        return out.reshape(-1, g.m_tile, n)
