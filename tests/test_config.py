"""Config validation: malformed files give one clear paragraph; the schema files stay in sync."""

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from accelsmith.config import ConfigError, json_schema, load, reference_markdown, validate
from accelsmith.registry import reference_configs

from .conftest import ROOT

BAD = sorted((ROOT / "tests" / "bad_configs").glob("*.yaml"))

# What each error must mention besides the file name: the key and the offending value or rule.
EXPECTED = {
    "01_wrong_type_int": ["'rows'", "'four'", "integer from 1 to 64"],
    "02_wrong_type_bool": ["'a_signed'", "'yes'", "true or false"],
    "03_unknown_key": ["'rowz'", "Did you mean 'rows'"],
    "04_size_too_small": ["'rows'", "0", "from 1 to 64"],
    "05_width_too_large": ["'a_bits'", "32", "from 2 to 16"],
    "06_missing_family": ["'family'", "missing", "bitweight"],
    "07_bad_yaml": ["not valid YAML", "line 4"],
    "08_unknown_architecture": ["'architecture'", "'hexagonal'", "systolic_os"],
    "09_unknown_family": ["'family'", "'bitwieght'", "bitweight", "Did you mean 'bitweight'?"],
    "10_key_not_for_architecture": ["'cube_n'", "systolic_os", "'cube'"],
    "11_missing_architecture": ["'architecture'", "missing", "'tree'"],
    "12_not_a_mapping": ["mapping", "list"],
    "13_acc_too_wide": ["'acc_bits'", "65", "from 2 to 64"],
    "14_mac_not_for_architecture": ["'mac'", "'opt2'", "'matrix2d'", "'opt4e'"],
    "15_nm_n_above_m": ["'n'", "5", "m = 4", "from 1 to m"],
    "16_unknown_sparse_format": ["'format'", "'csr'", "'nm'"],
    "17_bitmap_tile_below_grid": ["'m_tile'", "4", "rows = 8"],
    "18_result_buffer_digit_serial": ["'result_buffer'", "'opt3'", "'opt1'"],
    "19_compressor_for_baseline": ["'compressor'", "'baseline' (the default)", "'opt2'"],
    "20_duplicate_key": ["'rows'", "stated twice", "lines 3 and 5"],
    "21_acc_overflows_at_k1": ["'acc_bits'", "12", "16 bits", "acc_wraps: true"],
    "22_value_typo": ["'architecture'", "'sytolic_os'", "Did you mean 'systolic_os'?"],
    "23_bitmap_n_tile_below_cols": ["'n_tile'", "4", "cols = 8"],
    "24_bad_top_name": ["'name'", "'4x4-engine'", "matching"],
    "25_nested_too_deep": ["nested more than 4 levels", "line"],
    "26_alias_bomb": ["nested more than 4 levels", "line 3"],
    "27_pipeline_digit_serial": ["'pipeline'", "1", "'opt4c'", "digit-serial", "baseline, opt1, opt2"],
    "28_pipeline_2_weight_stationary": ["'pipeline'", "2", "'systolic_ws'", "0, 1"],
    "29_ecp5_dsp_without_pipeline": ["'dsp'", "'ecp5'", "pipeline 1", "pipeline 2 or 3"],
    "30_gaussian_lanes_not_a_square": ["'lanes'", "32", "16, 64, 256"],
    "31_gaussian_unknown_blend": ["'blend'", "'sorted'", "'coverage', 'authors'"],
    "32_gaussian_buffer_too_large": ["'buffer'", "40000", "from 0 to 32768"],
    "33_gaussian_unknown_order": ["'order'", "'spiral'", "'hilbert', 'pi'"],
}


def test_every_bad_config_has_expectations():
    assert len(BAD) >= 10
    assert {p.stem for p in BAD} == set(EXPECTED)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_cli_error(path, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "accelsmith.cli", "generate", str(path), "-o",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert err.startswith("error: ") and "\n" not in err, err   # one paragraph
    assert str(path) in err
    for fragment in EXPECTED[path.stem]:
        assert fragment in err, f"{fragment!r} missing from: {err}"
    assert not list(tmp_path.iterdir()), "nothing may be generated from a bad config"


# Rules a JSON Schema cannot state: a duplicate key is gone once YAML is parsed (editors' YAML
# servers flag it themselves); the width of one product is arithmetic over four keys; the alias
# bomb is the loader's limit (expanded, as plain YAML tools do, it is 10^12 values).
NOT_IN_JSON_SCHEMA = {"20_duplicate_key", "21_acc_overflows_at_k1", "26_alias_bomb"}


@pytest.mark.parametrize("path", [p for p in BAD if p.stem not in NOT_IN_JSON_SCHEMA],
                         ids=lambda p: p.stem)
def test_bad_config_rejected_by_json_schema(path):
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return  # not YAML at all: no schema applies
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json_schema())


def test_reference_configs_valid_against_schema():
    configs = reference_configs()
    assert len(configs) >= 7
    for path in configs:
        load(path)
        jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())


def test_shipped_schema_and_reference_are_current():
    shipped = json.loads((ROOT / "accelsmith" / "config.schema.json").read_text())
    assert shipped == json_schema(), "regenerate: accelsmith schema -o accelsmith/config.schema.json"
    doc = (ROOT / "docs" / "config-reference.md").read_text()
    assert doc == reference_markdown(), "regenerate: accelsmith schema --markdown -o docs/config-reference.md"


def test_defaults_filled_and_only_applicable_keys():
    cfg = validate({"family": "bitweight", "architecture": "tree"})
    assert cfg["units"] == 4 and cfg["tree_k"] == 4 and cfg["m_tile"] == 4
    assert "rows" not in cfg.values and "cube_n" not in cfg.values
    assert cfg["acc_bits"] is None and cfg["a_signed"] is True


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="'rows' has value True"):
        validate({"family": "bitweight", "architecture": "matrix2d", "rows": True})


def test_missing_file():
    with pytest.raises(ConfigError, match="no such file"):
        load(ROOT / "configs" / "does_not_exist.yaml")


def test_oversized_config_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("family: bitweight\narchitecture: systolic_os\n" + "# padding\n" * 8000)
    with pytest.raises(ConfigError, match=r"huge.yaml: the file has 80,0\d\d bytes; a config is at most"):
        load(path)


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    path = tmp_path / "code.yaml"
    path.write_text("family: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(path)
