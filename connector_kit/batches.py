"""BATCH messages (singer-sdk's extension: a stream's records in files), read record by record.

The SDK hands a BATCH's records straight to the sink's `process_batch`: not validated, not
mapped, not counted as received, so a later STATE could be written while they, or records
buffered before them, were still unwritten. The targets instead take each record of the files
as if it had come in its own RECORD message (`PipelinedTarget._process_batch_message`): same
validation, stream maps, per-key order and STATE accounting. The files are read as the SDK
reads them (JSON Lines, gzipped or not; Parquet when pyarrow is installed), one line at a time.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterator
from typing import Any

from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchFileFormat, StorageTarget

from connector_kit.serialize import parse_json


class UnsupportedBatch(ValueError):
    """A BATCH message in a format the target cannot read."""


def batch_records(message: dict[str, Any], storage: StorageTarget | None) -> Iterator[dict]:
    """The records of a BATCH message's files, in order; `storage`: the `batch_config` one."""
    encoding = BaseBatchFileEncoding.from_dict(message["encoding"])
    parquet = encoding.format == BatchFileFormat.PARQUET
    if encoding.format != BatchFileFormat.JSONL and not parquet:
        raise UnsupportedBatch(
            f"Stream '{message['stream']}': a BATCH message in format {encoding.format!r}; "
            "this target reads 'jsonl' (gzipped or not) and 'parquet' (with pyarrow installed)."
        )
    if parquet and importlib.util.find_spec("pyarrow") is None:
        raise UnsupportedBatch(
            f"Stream '{message['stream']}': a BATCH message in Parquet, and pyarrow is not "
            "installed; install it, or have the tap write 'jsonl' batches."
        )
    for url in message["manifest"]:
        head, tail = StorageTarget.split_url(url)
        with (storage or StorageTarget.from_url(head)).open(tail, mode="rb") as file:
            if parquet:
                yield from _parquet_rows(file)
            elif encoding.compression == "gzip":
                with gzip.open(file) as unzipped:
                    yield from _json_lines(unzipped)
            else:
                yield from _json_lines(file)


def _json_lines(file: Any) -> Iterator[dict]:
    for line in file:
        if line.strip():
            yield parse_json(line)


def _parquet_rows(file: Any) -> Iterator[dict]:
    import pyarrow.parquet as pq  # optional, as in the SDK

    for batch in pq.ParquetFile(file).iter_batches():
        yield from batch.to_pylist()
