"""Faithful replay of recorded trajectories (swescale's own and other agents')."""
