"""The run record: every file of a run directory, written and read here."""
