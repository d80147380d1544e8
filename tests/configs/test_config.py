"""Config loading: every shipped config validates; errors name the file and the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from configs.schema import AnalyticMarketConfig, ExperimentConfig, GLFTConfig
from experiments.config import (
    CONFIG_DIR,
    ConfigError,
    apply_overrides,
    load_config,
    to_yaml,
    validate_config,
)

SHIPPED = sorted(p for p in CONFIG_DIR.glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


MINIMAL = """
name: t
policies:
  - kind: glft
    gamma: 0.1
"""


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)


def test_unknown_key_is_reported_with_file_and_path(tmp_path):
    path = write(tmp_path, MINIMAL + "market:\n  kind: analytic\n  sigmaa: 1.0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "market.sigmaa: unknown key" in str(err.value)


def test_out_of_range_value_is_reported_with_its_path_and_value(tmp_path):
    path = write(tmp_path, MINIMAL + "market:\n  sigma: -2\n")
    with pytest.raises(ConfigError, match=r"(?s)market\.sigma: .*greater than 0.*-2"):
        load_config(path)


def test_error_inside_a_tagged_union_list_names_the_index_not_the_tag(tmp_path):
    path = write(tmp_path, "name: t\npolicies:\n  - kind: glft\n    gamma: abc\n")
    with pytest.raises(ConfigError, match=r"policies\.0\.gamma: .*number"):
        load_config(path)


def test_wrong_type_and_missing_field(tmp_path):
    path = write(tmp_path, "name: t\nseed: many\npolicies:\n  - kind: fixed_spread\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "seed:" in text and "policies.0.half_spread: Field required" in text


def test_unknown_policy_kind_lists_the_choices(tmp_path):
    path = write(tmp_path, "name: t\npolicies:\n  - kind: magic\n")
    with pytest.raises(ConfigError, match="glft"):
        load_config(path)


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "name: t\npolicies: [\n")
    with pytest.raises(ConfigError, match=r"(?s)exp\.yaml: not valid YAML.*line"):
        load_config(path)


def test_overrides_change_values_and_are_validated(tmp_path):
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path, ["market.sigma=0.5", "policies.0.gamma=2", "seed=9"])
    assert isinstance(cfg.policies[0], GLFTConfig)
    assert isinstance(cfg.market, AnalyticMarketConfig)
    assert cfg.market.sigma == 0.5 and cfg.policies[0].gamma == 2.0 and cfg.seed == 9
    with pytest.raises(
        ConfigError, match=r"(?s)with --set market\.sigmx=1.*\n  market\.sigmx: unknown key"
    ):
        load_config(path, ["market.sigmx=1"])
    with pytest.raises(ConfigError, match="list index"):
        load_config(path, ["policies.3.gamma=1"])
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        load_config(path, ["market.sigma"])


def test_duplicate_policy_labels_are_rejected(tmp_path):
    path = write(tmp_path, MINIMAL + "  - kind: glft\n    gamma: 0.2\n")
    with pytest.raises(ConfigError, match="unique"):
        load_config(path)


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    again = validate_config(yaml.safe_load(to_yaml(cfg)))
    assert again == cfg


keys = st.text("abcdefgh", min_size=1, max_size=4)
scalars = st.one_of(st.integers(-1000, 1000), st.booleans(), st.text("xyz", max_size=5))


@given(path=st.lists(keys, min_size=1, max_size=4), value=scalars)
def test_override_sets_exactly_the_addressed_leaf(path, value):
    data: dict = {"other": {"x": 1}}
    text = ".".join(path) + "=" + yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    apply_overrides(data, [text])
    node = data
    for part in path:
        node = node[part]
    assert node == value
    if path[0] != "other":
        assert data["other"] == {"x": 1}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("market.s0=.nan", "market.s0"),
        ("market.sigma=.inf", "market.sigma"),
        ("market.T=.inf", "market.T"),
        ("market.sigma=0", "market.sigma"),
        ("market.A=.inf", "market.A"),
        ("market.A=-.inf", "market.A"),
        ("policies.0.gamma=.nan", "policies.0.gamma"),
    ],
)
def test_nan_inf_and_senseless_zeros_are_refused_naming_the_key(tmp_path, override, key):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=f"(?s){re.escape(str(path))}.*{re.escape(key)}"):
        load_config(path, [override])


def test_order_book_floats_are_finite_too(tmp_path):
    path = write(tmp_path, "name: t\nmarket:\n  kind: lob\n  maker_fee_bps: .nan\n")
    with pytest.raises(ConfigError, match=r"market\.maker_fee_bps: .*finite"):
        load_config(path)


@pytest.mark.parametrize("text", ["1e5", "1E5", "+1e5", "100000"])
def test_scientific_notation_is_a_number(tmp_path, text):
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path, [f"evaluation.n_paths={text}"])
    assert cfg.evaluation.n_paths == 100_000
