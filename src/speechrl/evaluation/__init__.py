"""Decode a test split and score every metric: per-sample outputs + metrics.json."""
