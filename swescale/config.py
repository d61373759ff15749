"""The run configuration: pydantic models, YAML presets in ``configs/``, dotted overrides.

``load_config("configs/default.yaml", ["scaling.n_parallel=4", "model.temperature=0.7"])``
reads the file, applies each ``key=value`` (the value parsed as YAML, so numbers, booleans
and lists work), and validates the result; unknown keys are errors, not silent no-ops.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swescale.agent.config import AgentConfig, ModelConfig
from swescale.sandbox.config import ImagesConfig, SandboxConfig
from swescale.scaling.config import BudgetConfig, ScalingConfig
from swescale.selection.config import SelectionConfig
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.verifiers.config import VerifiersConfig

# swescale/configs links to the repository's configs/ (presets and prompt templates), so
# a source checkout and an installed wheel find them the same way.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which and why."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = ""
    runs_dir: Path = Path("runs")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    verifiers: VerifiersConfig = Field(default_factory=VerifiersConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    grading: GradingConfig = Field(default_factory=GradingConfig)

    def digest(self) -> str:
        """A stable hash of everything that changes results (not where they are written,
        nor where they are computed: the executor settings and where images are pulled
        from, and how, are left out)."""
        data = self.model_dump(
            mode="json",
            exclude={
                "run_id": True,
                "runs_dir": True,
                "scaling": {"executor", "ray"},
                "images": {"registry", "pull_retries", "pull_rate", "keep_pulled"},
            },
        )
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


class _Loader(yaml.SafeLoader):
    """YAML as 1.2 reads numbers: ``1:3`` stays the string it is (YAML 1.1, PyYAML's
    default, reads it as the base-60 integer 63, so ``dataset.slice=1:3`` broke)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if not (tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and regexp.match("1:3"))
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` without YAML 1.1's base-60 numbers."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {exc}") from exc
    return key.strip(), value


def presets() -> list[str]:
    """The preset names in ``configs/`` (``scripted`` for configs/scripted.yaml)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(path: str | Path) -> Path:
    """A config file: the path as given, else a preset of ``configs/`` by name
    (``default``) or by the path the docs write (``configs/default.yaml``, from any
    directory). ConfigError naming the presets (and the nearest one) otherwise."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    guesses = [CONFIG_DIR / candidate, CONFIG_DIR / f"{candidate}.yaml"]
    if not candidate.is_absolute() and candidate.parts[:1] == ("configs",):
        inside = Path(*candidate.parts[1:]) if len(candidate.parts) > 1 else Path()
        guesses += [CONFIG_DIR / inside, CONFIG_DIR / f"{inside}.yaml"]
    for guess in guesses:
        if guess.is_file():
            return guess
    names = presets()
    near = difflib.get_close_matches(candidate.stem, names, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(
        f"config {str(path)!r} not found: no such file, and no preset of that name{hint} "
        f"(presets: {', '.join(names)}; give a name or a path to a YAML file)"
    )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file or preset; clear errors for anything else."""
    file = resolve_config_path(path)
    try:
        loaded = load_yaml(file.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    return loaded


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain_validation(exc, RunConfig)) from exc


def explain_validation(exc: ValidationError, model: type[BaseModel]) -> str:
    """A validation error as a person fixes it, one problem each: an unknown key with
    the nearest known one ("unknown key scaling.nparallel; did you mean
    scaling.n_parallel?"), else the key, what is wrong and the value given."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = ".".join(loc) or "config"
        if error["type"] == "extra_forbidden":
            known = _keys_at(model, loc[:-1])
            near = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
            prefix = ".".join(loc[:-1])
            if near:
                hint = f"; did you mean {'.'.join([*loc[:-1], near[0]])}?"
            elif known:
                hint = f"; the keys of {prefix or 'the config'}: {', '.join(known)}"
            else:
                hint = ""
            problems.append(f"unknown key {where}{hint}")
            continue
        given = error.get("input")
        shown = f" (given: {given!r})" if isinstance(given, str | int | float | bool) else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}{shown}")
    return "invalid config: " + "; ".join(problems)


def _keys_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the section ``path`` of ``model`` ([] when it is no section)."""
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if isinstance(current, type) and fields else []
