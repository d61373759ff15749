"""Mini-benchmark fixtures (tasks, instance images, sandbox factories)."""

from conftest_mini import mini_by_id, mini_images, sandbox_factory  # noqa: F401
