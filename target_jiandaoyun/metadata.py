"""The destination's metadata: a Jiandaoyun form and its widgets, as `widget/list` describes
them (docs/api/jiandaoyun.md §2.3), and how a setting names a widget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Widget:
    name: str  # what the API reads and writes: the alias when one is set, else the widget id
    widget_id: str
    label: str
    type: str
    items: tuple[Widget, ...] = ()  # a subform's own widgets
    required: bool = False  # the form marks it required (docs/api/jiandaoyun.md §2.3)
    options: tuple[str, ...] | None = None  # the texts an option widget offers, when listed

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Widget:
        widget_id = raw.get("widgetName") or raw["name"]
        options = raw.get("options")
        return cls(
            name=raw.get("name") or widget_id,
            widget_id=widget_id,
            label=raw.get("label") or "",
            type=raw.get("type") or "",
            items=tuple(cls.parse(item) for item in raw.get("items") or ()),
            required=raw.get("required") is True,
            options=tuple(str(o) for o in options) if isinstance(options, list) else None,
        )

    def describe(self) -> str:
        return f"'{self.label}' ({self.name}, {self.type})"


@dataclass(frozen=True)
class Form:
    app_id: str
    entry_id: str
    widgets: tuple[Widget, ...]
    system_fields: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, app_id: str, entry_id: str, body: dict[str, Any]) -> Form:
        return cls(
            app_id=app_id,
            entry_id=entry_id,
            widgets=tuple(Widget.parse(w) for w in body.get("widgets") or ()),
            system_fields=frozenset(w.get("name", "") for w in body.get("sysWidgets") or ()),
        )

    @property
    def ref(self) -> str:
        return f"{self.app_id}/{self.entry_id}"


def find_widget(ref: str, widgets: Iterable[Widget]) -> Widget:
    """The widget `ref` names: alias or id first (they are unique), then the label."""
    widgets = tuple(widgets)
    for widget in widgets:
        if ref in (widget.name, widget.widget_id):
            return widget
    labelled = [w for w in widgets if w.label == ref]
    if len(labelled) == 1:
        return labelled[0]
    if labelled:
        names = ", ".join(w.name for w in labelled)
        raise LookupError(
            f"label '{ref}' is on {len(labelled)} widgets ({names}); name it by alias or id"
        )
    labels = ", ".join(f"{w.label} ({w.name})" for w in widgets)
    raise LookupError(f"no widget with label, alias or id '{ref}'; the widgets are: {labels}")
