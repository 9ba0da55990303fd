"""What both targets share: pacing, retries, ordered checkpoints, dead letters, the run report
(and the few HTTP helpers the tap uses too: base-URL checks, `Retry-After`).

The API-specific parts (Twenty's upsert keys, Jiandaoyun's widget values) stay in each plugin.
"""
