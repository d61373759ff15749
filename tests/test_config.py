"""Run configuration: presets, dotted overrides, and clear errors for bad input."""

from __future__ import annotations

import pytest

from swescale.config import CONFIG_DIR, ConfigError, RunConfig, load_config, parse_override


def test_every_preset_loads():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        if path.stem == "ci":  # the bot's own preset has a `ci:` section; see swescale.ci
            continue
        assert isinstance(load_config(path), RunConfig), path


def test_overrides_are_yaml_typed_and_dotted():
    cfg = load_config(
        "scripted",
        ["scaling.n_parallel=7", "model.temperature=0.25", "dataset.instance_ids=[a, b]"],
    )
    assert cfg.scaling.n_parallel == 7 and cfg.model.temperature == 0.25
    assert cfg.dataset.instance_ids == ["a", "b"]
    assert parse_override("sandbox.network=true") == ("sandbox.network", True)


def test_digest_ignores_where_results_go_but_not_what_changes_them():
    a = load_config("scripted")
    assert a.digest() == load_config("scripted", ["run_id=x", "runs_dir=/tmp/elsewhere"]).digest()
    assert a.digest() != load_config("scripted", ["scaling.n_parallel=9"]).digest()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scaling.no_such_knob=1"], "no_such_knob"),
        (["nonsense=1"], "nonsense"),
        (["scaling.n_parallel=many"], "n_parallel"),
        (["verifiers.enabled=[bogus]"], "unknown verifier"),
        (["no-equals-sign"], "key=value"),
        (["scaling.n_parallel.deeper=1"], "not a section"),
    ],
)
def test_bad_overrides_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("scripted", overrides)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("scaling: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
