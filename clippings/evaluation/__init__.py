"""Offline scoring: clustering, top-1, threshold tuning, string baselines, `clippings eval`."""
