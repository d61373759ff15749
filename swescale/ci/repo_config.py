"""``.swescale.yaml``: the model and its parser live with the spec providers
(``swescale.swebench.specs.repo_config``), which build environments from it; the bot
reads them from here."""

from swescale.swebench.specs.repo_config import (
    DEFAULT_INSTALL,
    DEFAULT_TEST_COMMAND,
    REPO_CONFIG_FILE,
    SUITE_BY_PYTHON,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)

__all__ = [
    "DEFAULT_INSTALL",
    "DEFAULT_TEST_COMMAND",
    "REPO_CONFIG_FILE",
    "SUITE_BY_PYTHON",
    "RepoConfig",
    "RepoConfigError",
    "parse_repo_config",
]
