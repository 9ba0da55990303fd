"""What the three plugins share: the transport, one retry loop, pacing that models each
server's limiter, secret masking, typed settings; and for the targets: ordered checkpoints,
dead letters, the run report, plan mode.

The API-specific parts (Twenty's upsert keys, Jiandaoyun's widget values) stay in each plugin.
"""
