"""Reference configurations users start from (YAML data files)."""
