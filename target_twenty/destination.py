"""The Twenty workspace as one run sees it, shared by every sink and handed to what writes.

It holds the client, the id map, the run report and the settings, reads the workspace's
metadata once (when the first stream arrives: every mapping is checked then), keeps each
stream's mapping, and knows which objects held no row before the run wrote to them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from connector_kit.http import ApiError, ConfigError
from connector_kit.report import RunReport
from target_twenty.client import WITH_DELETED, TwentyClient
from target_twenty.ids import IdStore
from target_twenty.mapping import Reference, StreamMapping
from target_twenty.metadata import TwentyObject, Workspace
from target_twenty.settings import TwentySettings


class Destination:
    def __init__(
        self,
        client: TwentyClient,
        ids: IdStore,
        report: RunReport,
        settings: TwentySettings,
        logger: logging.Logger,
    ) -> None:
        self.client = client
        self.ids = ids
        self.report = report
        self.settings = settings
        # Streams other streams reference: their written ids are noted for this run.
        self.parent_streams = {
            ref.get("stream")
            for spec in settings.mappings.values()
            for ref in [
                *((spec or {}).get("references") or {}).values(),
                *(((spec or {}).get("links") or {}).get("to") or []),
            ]
            if isinstance(ref, dict)
        }
        self.logger = logger
        self.conflicts_said = 0  # unique-value conflicts warned about (the first 20 are)
        self._workspace: Workspace | None = None
        self._mappings: dict[str, StreamMapping] = {}
        self._empty: dict[str, bool] = {}  # object id → it held no row when the run began
        self._empty_lock = threading.Lock()

    @property
    def mappings(self) -> dict[str, StreamMapping]:
        """The mappings read so far, by stream."""
        return dict(self._mappings)

    @property
    def workspace(self) -> Workspace:
        """The metadata, read when the first stream arrives; every mapping is checked then."""
        if self._workspace is None:
            self._workspace = Workspace.from_api(self.client.objects())
            settings = self.settings.mappings
            for stream, spec in settings.items():
                self._mappings[stream] = StreamMapping.from_settings(
                    stream,
                    spec or {},
                    self._workspace,
                    settings,
                    self.settings.create_missing_fields,
                    self.settings.default_timezone,
                )
            for stream in self.parent_streams - set(settings):
                self.mapping(stream)  # a parent loaded with the default mapping: check it too
        return self._workspace

    def mapping(self, stream: str) -> StreamMapping:
        """The stream's mapping as configured (default fields not filled in yet)."""
        workspace = self.workspace
        if stream not in self._mappings:
            self._mappings[stream] = StreamMapping.from_settings(
                stream,
                {},
                workspace,
                self.settings.mappings,
                timezone=self.settings.default_timezone,
            )
        return self._mappings[stream]

    def object_of(self, stream: str) -> TwentyObject:
        return self.mapping(stream).object

    def create_fields(self, mapping: StreamMapping, properties: dict[str, Any]) -> StreamMapping:
        """Create the fields `mapping` names that its object lacks (`create_missing_fields`);
        the mapping with them. Runs when the stream's SCHEMA arrives, before its records."""
        obj = mapping.object
        for name, definition in mapping.field_types(properties).items():
            if name in obj.fields:
                continue  # another stream of the same object created it
            body = {
                "objectMetadataId": obj.id,
                "name": name,
                "label": _label(name),
                "isNullable": True,
                **definition,
            }
            if "options" in body:
                body["options"] = [
                    {"value": v, "label": v, "position": n} for n, v in enumerate(body["options"])
                ]
            try:
                self.client.create_field(body)
            except ApiError as exc:
                raise ConfigError(
                    f"Setting 'create_missing_fields': Twenty refused to create field {name!r} "
                    f"on '{obj.plural}' (stream '{mapping.stream}'): {exc.code} {exc.message}"
                ) from None
            self.logger.info(
                "Created field %s.%s (%s) for stream '%s'.",
                obj.plural,
                name,
                definition["type"],
                mapping.stream,
            )
        fresh = Workspace.from_api(self.client.objects()).object(obj.plural)
        obj.add_fields(fresh.fields)  # every mapping of the object sees them
        updated = mapping.with_created_fields()
        self._mappings[mapping.stream] = updated
        return updated

    def dependants(self, stream: str) -> list[tuple[StreamMapping, Reference]]:
        """The mappings with references to `stream`'s records, and those references."""
        self.workspace  # noqa: B018 - loads every configured mapping
        return [
            (mapping, ref)
            for mapping in list(self._mappings.values())
            for ref in mapping.references
            if ref.stream == stream
        ]

    def started_empty(self, obj: TwentyObject) -> bool:
        """Whether `obj` held no row at all (soft-deleted ones included) before this run wrote
        to it: asked once per object, before its first write (`ownership.py`)."""
        with self._empty_lock:
            if obj.id not in self._empty:
                rows = self.client.api.send(
                    "GET",
                    f"/rest/{obj.plural}",
                    endpoint=f"GET /rest/{obj.plural}",
                    params={"filter": WITH_DELETED, "limit": 1},
                )
                found = ((rows or {}).get("data") or {}).get(obj.plural) or []
                self._empty[obj.id] = not found
            return self._empty[obj.id]


def _label(name: str) -> str:
    """`okkiId` → `Okki Id`: a field label people read in Twenty."""
    words, word = [], ""
    for char in name:
        if char.isupper() and word:
            words.append(word)
            word = char
        else:
            word += char
    words.append(word)
    return " ".join(w[:1].upper() + w[1:] for w in words)
