"""A singer-sdk target that writes nothing: the framework's own cost of reading, validating and
batching records (the floor the CPU benchmark compares our targets with).

    .venv/bin/python benchmarks/null_target.py --config config.json < input.singer
"""

from __future__ import annotations

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink


class NullSink(BatchSink):
    def process_batch(self, context: dict) -> None:
        """Drop the batch."""


class NullTarget(Target):
    name = "target-null"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NullSink


if __name__ == "__main__":
    NullTarget.cli()
