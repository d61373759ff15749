"""swescale: scale test-time compute for software-engineering agents.

A task (an issue in a repository at a commit) gets an environment image; many trajectories
run an agent against sandboxes from that image, in parallel and in rounds; verifiers give
each candidate patch evidence; a selector picks one. See docs/architecture.md.
"""

__version__ = "0.1.0"
