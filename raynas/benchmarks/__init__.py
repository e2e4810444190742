"""Benchmark data shipped with raynas (see ATTRIBUTION.md in this folder)."""
