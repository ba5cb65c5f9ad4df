"""Handlers the shipped flows name by dotted path: what their YAML cannot say (the database)."""
