"""Solving a repository's own issues in batch (``swescale solve``): issues from a GitHub
export, a JSON lines file or the command line; each repository's environment from its
own files (the "inferred" spec provider); the run pipeline without grading; a branch and
the CI bot's evidence summary per issue; pull requests on request."""
