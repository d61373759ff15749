"""Mini-benchmark fixtures (tasks, instance images)."""

from conftest_mini import mini_by_id, mini_images  # noqa: F401
