"""target-jiandaoyun's plan client (`dry_run: true`, see `connector_kit/plan.py`): reads go to
Jiandaoyun, writes do not.

The writer reads before it writes anyway: in upsert mode `data/list` gives it every stored row
of a batch's keys, with every mapped widget. The plan client keeps those rows (for the batch
being written) and answers each write as Jiandaoyun would:

- `batch_create`: every row created (`success_count` = the rows), under placeholder ids;
- `data/update`: done, the widgets whose value differs from the stored row noted as changes;
- `data/delete`: done.

A plan therefore makes no call beyond the reads a real run makes: `widget/list`, the directory
and `data/list`.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from connector_kit.plan import Changes
from target_jiandaoyun.client import BATCH_CREATE, DELETE, LIST, UPDATE, WIDGETS, JiandaoyunApi
from target_jiandaoyun.values import holds

_CACHE_LIMIT = 10_000  # stored rows kept for comparison; memory stays flat


class PlanApi(JiandaoyunApi):
    def __init__(self, *args: Any, changes: Changes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changes = changes
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}  # _id → the row data/list gave
        self._types: dict[tuple[str, str], dict[str, str]] = {}  # form → widget → type
        self._labels: dict[tuple[str, str], dict[str, str]] = {}  # form → widget → label
        self.refused = 0

    def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        if endpoint in (BATCH_CREATE, UPDATE, DELETE):
            with self._lock:
                self.refused += 1
            return self._answer(endpoint, body)
        answer = super().call(endpoint, body)
        if endpoint == LIST:
            with self._lock:
                if len(self._rows) > _CACHE_LIMIT:
                    self._rows.clear()
                for row in answer.get("data") or []:
                    if isinstance(row, dict) and "_id" in row:
                        self._rows[row["_id"]] = row
        elif endpoint == WIDGETS:
            form = (body["app_id"], body["entry_id"])
            widgets = [w for w in answer.get("widgets") or [] if isinstance(w, dict)]
            self._types[form] = {w.get("name", ""): w.get("type", "") for w in widgets}
            self._labels[form] = {w.get("name", ""): w.get("label") or "" for w in widgets}
        return answer

    def _answer(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        if endpoint == BATCH_CREATE:
            rows = body.get("data_list") or []
            return {
                "success_count": len(rows),
                "success_ids": [f"plan-{uuid.uuid4().hex[:12]}" for _ in rows],
            }
        data_id = str(body.get("data_id"))
        with self._lock:
            stored = self._rows.pop(data_id, None)
        if endpoint == UPDATE:
            form = (body["app_id"], body["entry_id"])
            self.changes.note(data_id, self._differences(form, body.get("data") or {}, stored))
        return {"status": "success"}

    def _differences(
        self, form: tuple[str, str], data: dict[str, Any], stored: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Widget (by label) → {"from", "to"} for each value the stored row does not hold."""
        types, labels = self._types.get(form, {}), self._labels.get(form, {})
        changed = {}
        for name, wrapped in data.items():
            value = wrapped.get("value") if isinstance(wrapped, dict) else wrapped
            old = (stored or {}).get(name)
            if stored is None or not holds(types.get(name, ""), value, old):
                changed[labels.get(name) or name] = {"from": old, "to": value}
        return changed
