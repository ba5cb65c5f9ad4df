"""bot.yaml and flow files: YAML with source positions, typed models, diagnostics."""
