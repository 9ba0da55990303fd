"""The company directory (通讯录): which members and departments a value may name.

Jiandaoyun saves a member username or a department number it does not know as empty, and says
nothing (docs/api/jiandaoyun.md §7.2). So the directory is read once per run, when a mapping
first writes a member or department widget (two calls: every department and every member under
the root, §10), and every such value is looked up in it before it is sent.

A member widget stores a username (成员编号). A field may name its members by `email` or by
display `name` instead (`match_by`); a display name shared by several members names none of
them, since guessing would give the row to the wrong person. A department widget stores a
`dept_no`; a field may name departments by `name` (unique names only, likewise).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from target_jiandaoyun.client import ROOT_DEPARTMENT

MEMBER_KEYS = ("username", "email", "name")
DEPARTMENT_KEYS = ("dept_no", "name")


class Unknown(LookupError):
    """The value names no member or department (the message says why)."""


@dataclass(frozen=True)
class Directory:
    members: dict[str, dict[str, str]]  # by key ("username", "email", "name") → value → username
    departments: dict[str, dict[Any, int]]  # by key ("dept_no", "name") → value → dept_no
    shared: dict[str, set[Any]]  # key → values held by several members or departments

    @classmethod
    def parse(
        cls, departments: Iterable[dict[str, Any]], members: Iterable[dict[str, Any]]
    ) -> Directory:
        index: dict[str, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(list))
        # The root is not in its own list, but is a department values may name.
        index["dept_no"][ROOT_DEPARTMENT].append(ROOT_DEPARTMENT)
        for department in departments:
            number = department.get("dept_no")
            if isinstance(number, int) and not isinstance(number, bool):
                index["dept_no"][number].append(number)
                if department.get("name"):
                    index["dept:name"][department["name"]].append(number)
        for member in members:
            username = member.get("username")
            if not isinstance(username, str) or not username:
                continue
            for key in MEMBER_KEYS:
                value = member.get(key)
                if isinstance(value, str) and value:
                    # Emails are compared without case, as mail systems do.
                    value = value.lower() if key == "email" else value
                    index[f"user:{key}"][value].append(username)
        unique: dict[str, dict[Any, Any]] = {}
        shared: dict[str, set[Any]] = {}
        for key, values in index.items():
            unique[key] = {v: found[0] for v, found in values.items() if len(set(found)) == 1}
            shared[key] = {v for v, found in values.items() if len(set(found)) > 1}
        return cls(
            members={k: unique.get(f"user:{k}", {}) for k in MEMBER_KEYS},
            departments={"dept_no": unique["dept_no"], "name": unique.get("dept:name", {})},
            shared={
                **{k: shared.get(f"user:{k}", set()) for k in MEMBER_KEYS},
                "dept:name": shared.get("dept:name", set()),
            },
        )

    def has(self, key: str) -> bool:
        """Whether the directory's answers carry `key` for members (`email` may be missing)."""
        return bool(self.members.get(key))

    def username(self, value: str, by: str = "username") -> str:
        """The username of the member `value` names (by username, email or name)."""
        wanted = value.lower() if by == "email" else value
        found = self.members[by].get(wanted)
        if found is not None:
            return found
        if wanted in self.shared[by]:
            raise Unknown(f"several members have the {by} {value!r}; name one by username")
        raise Unknown(f"no member of the company directory has the {by} {value!r}")

    def dept_no(self, value: Any, by: str = "dept_no") -> int:
        """The number of the department `value` names (by number or name)."""
        found = self.departments[by].get(value)
        if found is not None:
            return found
        if by == "name" and value in self.shared["dept:name"]:
            raise Unknown(f"several departments are named {value!r}; name one by dept_no")
        raise Unknown(f"no department of the company directory has the {by} {value!r}")
