"""What both targets share: pacing, retries, ordered checkpoints, dead letters, the run report
(and what the tap uses too: the retry loop, typed settings, base-URL checks).

The API-specific parts (Twenty's upsert keys, Jiandaoyun's widget values) stay in each plugin.
"""
