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


def test_presets_resolve_by_name_and_by_the_path_the_docs_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # far from the repository's configs/
    by_path = load_config("configs/scripted.yaml")
    assert by_path == load_config("scripted") == load_config("configs/scripted")
    mine = tmp_path / "configs" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("scaling:\n  n_parallel: 3\n")
    assert load_config("configs/mine.yaml").scaling.n_parallel == 3  # a real file first


def test_a_missing_config_names_the_presets_and_the_nearest():
    with pytest.raises(ConfigError) as found:
        load_config("scriptd")
    message = str(found.value)
    assert "did you mean 'scripted'?" in message
    assert "presets: ci, default, scripted, scripted-hard, smoke, vllm" in message


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("scaling.nparallel=8", "unknown key scaling.nparallel; did you mean scaling.n_parallel?"),
        ("model.temprature=0.3", "did you mean model.temperature?"),
        ("scaling.zzz=1", "the keys of scaling: "),
    ],
)
def test_a_mistyped_key_suggests_the_nearest_one(override, hint):
    with pytest.raises(ConfigError) as found:
        load_config("scripted", [override])
    assert hint in str(found.value)
    assert "validation error" not in str(found.value)  # no raw pydantic dump


def test_the_cli_says_the_nearest_key_at_80_columns(tmp_path):
    from typer.testing import CliRunner

    from swescale.cli import app

    result = CliRunner().invoke(
        app,
        ["run", "-c", "configs/scripted.yaml", "-o", "scaling.nparallel=8", "-o",
         f"runs_dir={tmp_path}"],
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "did you mean scaling.n_parallel?" in text
    assert "pydantic" not in text and "For further information" not in text
    assert all(len(line) <= 80 for line in result.output.splitlines())


def test_help_paragraphs_reflow_to_the_terminal():
    from typer.testing import CliRunner

    from swescale.cli import app, reflow

    assert reflow("One line\nand the next.\n\n- a list\n- stays") == (
        "One line and the next.\n\n- a list\n- stays"
    )
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    lines = [line.strip("│ ") for line in result.output.splitlines()]
    # The validate summary flows on: no line ends where the docstring's source line did.
    assert not any(line.endswith("FAIL_TO_PASS fails and") for line in lines)
    assert "fails and PASS_TO_PASS passes" in " ".join(result.output.split())
    shown = CliRunner().invoke(app, ["select", "--help"], env={"COLUMNS": "200"})
    from swescale.selection.config import OFFLINE_SELECTORS

    assert all(name in shown.output for name in OFFLINE_SELECTORS)  # evidence too


def test_a_slice_override_stays_a_string_whatever_its_numbers() -> None:
    # YAML 1.1 reads 1:3 as the base-60 integer 63.
    from swescale.config import load_config, parse_override

    assert parse_override("dataset.slice=1:3") == ("dataset.slice", "1:3")
    assert parse_override("x=12") == ("x", 12) and parse_override("x=0.5") == ("x", 0.5)
    cfg = load_config("scripted", ["dataset.slice=1:3"])
    assert cfg.dataset.slice == "1:3"
