"""`--replay FILE`: send dead-lettered records again, once their cause is fixed.

    target-twenty --config config.json --replay output/target-twenty/dead-letters.jsonl
    meltano --environment=prod invoke target-twenty --replay output/target-twenty/dead-letters.jsonl

The file is first renamed `FILE.replay`, then read line by line as Singer messages: each
line's SCHEMA (from `FILE.schemas.jsonl`, see `deadletter.py`) when its stream first needs it,
then its RECORD, in the order the records were dead-lettered; no STATE, so Meltano's bookmarks
do not move. Each record goes through the target as in a normal run: written, or dead-lettered
again (to `dead_letter_path`, anew) with the reason. When the input is through, `FILE.replay`
is removed. Only these records are sent, under their stable ids (or keys): nothing else in the
destination changes, and a record that did land meanwhile is updated, not duplicated.

A replay that stops half-way (a crash, a kill) leaves `FILE.replay`: run `--replay FILE.replay`
once the cause is fixed; records it already wrote are upserted again, not duplicated (a
Jiandaoyun form without `key_widget` appends: there a record can land twice).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from connector_kit.deadletter import read_schemas, schemas_path
from connector_kit.http import ConfigError
from connector_kit.target import TooManyFailedRecords

SUFFIX = ".replay"


def replay_messages(taken: Path, schemas: Path) -> Iterator[str]:
    """The dead letters of `taken` as Singer message lines (SCHEMA when needed, RECORD)."""
    known = read_schemas(schemas)
    current: dict[str, str] = {}  # stream → the schema id last sent for it
    with taken.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            letter = json.loads(line)
            stream, ident = letter["stream"], letter.get("schema")
            if ident not in known:
                raise ConfigError(
                    f"{taken}, line {number}: the schema of this '{stream}' record is not in "
                    f"{schemas} (dead letters written before schemas were kept cannot be "
                    "replayed: send them again from the tap)"
                )
            if current.get(stream) != ident:
                current[stream] = ident
                entry = known[ident]
                yield json.dumps(
                    {
                        "type": "SCHEMA",
                        "stream": stream,
                        "schema": entry["schema"],
                        "key_properties": entry["key_properties"],
                    },
                    ensure_ascii=False,
                )
            yield json.dumps(
                {"type": "RECORD", "stream": stream, "record": letter["record"]},
                ensure_ascii=False,
            )


class DeadLetterReplay:
    """Mixin for a `PipelinedTarget` (listed before it): dead letters carry the run id and the
    schema they need to be replayed, and `--replay FILE` replays them."""

    logger: logging.Logger
    dead_letters: Any
    report: Any
    sinks: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dead_letters.run_id = self.report.run_id
        self.dead_letters.describe = self._stream_schema

    def _stream_schema(self, stream: str) -> tuple[dict[str, Any], list[str]] | None:
        sink = self.sinks.get(stream)
        if sink is None:
            return None
        return sink.schema, list(sink.key_properties or [])

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()  # type: ignore[misc]
        command.params.append(
            click.Option(
                ["--replay", "replay_file"],
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="Send the records of a dead-letter file again instead of reading input.",
            )
        )
        return command

    @classmethod
    def invoke(cls, *, replay_file: Path | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        if replay_file is None:
            super().invoke(**kwargs)  # type: ignore[misc]
            return
        source = replay_file.with_name(replay_file.name.removesuffix(SUFFIX))
        taken = source.with_name(source.name + SUFFIX)
        if replay_file != taken:
            if taken.exists():
                raise ConfigError(
                    f"{taken} is left from a replay that did not finish: replay it first "
                    f"(--replay {taken})."
                )
            replay_file.rename(taken)
        cls.logger.info("Replaying the dead letters of %s (moved to %s)", source, taken)
        try:
            super().invoke(  # type: ignore[misc]
                **{**kwargs, "file_input": replay_messages(taken, schemas_path(source))}
            )
        except TooManyFailedRecords:
            taken.unlink(missing_ok=True)  # through: what failed again is dead-lettered anew
            raise
        except BaseException:
            cls.logger.error(
                "The replay stopped; the records not yet sent are still in %s: fix the cause "
                "and run --replay %s again.",
                taken,
                taken,
            )
            raise
        taken.unlink(missing_ok=True)
        cls.logger.info("Replay of %s complete; it is removed.", taken)
