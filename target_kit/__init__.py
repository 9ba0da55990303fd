"""What both targets share: pacing, retries, ordered checkpoints, dead letters, the run report.

The API-specific parts (Twenty's upsert keys, Jiandaoyun's widget values) stay in each plugin.
"""
