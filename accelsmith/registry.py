"""The accelerator families: their parameter schemas, generators and testbenches, by name.

A family named ``X`` lives in ``generators/X.py`` (``SCHEMA`` and ``build``),
``models/X.py`` and ``testbench/X.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

FAMILIES = ("bitweight", "sparse", "gaussian")


def generator(family: str):
    return importlib.import_module(f"accelsmith.generators.{family}")


def family_schema(family: str):
    return generator(family).SCHEMA


def testbench_module(family: str) -> str:
    return f"accelsmith.testbench.{family}"


def reference_configs() -> list[Path]:
    """The reference configurations shipped in ``configs/``."""
    import accelsmith.configs

    folder = Path(next(iter(accelsmith.configs.__path__)))
    return sorted(folder.glob("*.yaml"))
