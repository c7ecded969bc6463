"""Board pin and timing constraint files (data)."""
