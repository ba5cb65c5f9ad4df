"""The local brain: deterministic understanding of caller turns, and speech formatting."""
