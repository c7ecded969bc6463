from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SHARED = ROOT.parent / "shared"
SKY130 = SHARED / "data" / "sky130hd_tt.lib.gz"


@pytest.fixture
def sky130_liberty():
    if not SKY130.is_file():
        pytest.skip(f"sky130 liberty not found at {SKY130} (../shared/data beside the checkout)")
    return SKY130


SLOW_TIMEOUT_S = 4 * 3600   # standard-size simulations and syntheses run for an hour or more


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
