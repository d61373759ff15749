"""SWE-bench tasks and grading that agrees with the official harness.

Modules (imported directly; the official ``swebench`` package is slow to import, so this
package imports nothing up front):

- ``datasets``: ``load_tasks(DatasetConfig)`` for "mini", published names, local files.
- ``repos``: ``RepoSource`` (cached bare mirrors or a local mirrors directory),
  ``checkout_tar(task)``.
- ``specs``: ``provider_for(task)``, the spec provider of a task (official recipes or the
  task's own): environment, set-up steps, test command, eval script, log parser;
  ``repo_source_for(tasks, ...)``.
- ``layers``: what every image shares (repository and venv paths, a layer's ``Recipe``).
- ``images``: ``instance_image(client, task, ...)``, local build or official image.
- ``grading``: pure grading of literal logs with the official functions.
- ``run``: ``grade_patch(client, task, patch, cfg, image)`` in a fresh sandbox.
- ``evaluate``: ``Grader``, ``evaluate`` (``swescale eval``), ``validate``.
- ``predictions``: ``read_predictions``, ``append_prediction``.
- ``mini``: the bundled mini benchmark.
"""
