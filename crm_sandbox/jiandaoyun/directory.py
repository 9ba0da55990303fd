"""The company directory (通讯录): the members and departments `user` and `dept` values may name.

Listed by `corp/department/list` and `corp/department/user/list`, read by `corp/user/get`
(docs/api/jiandaoyun.md §10). Department 1 is the root (the company itself); the list endpoints
answer the departments and members *under* the department asked for, the department itself
not included, recursively with `has_child`.

Two members share the display name 张伟, as names do in real companies: a client matching members
by name must notice. Members carry an `email` in the listings, which the vendor's pages do not
show (our choice, so that a client can match by email where a directory has one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Member:
    username: str  # 成员编号: unique in the company, what a `user` widget stores
    name: str  # display name: may be shared
    departments: tuple[int, ...]
    email: str


@dataclass(frozen=True)
class Department:
    dept_no: int
    name: str
    parent_no: int | None


COMPANY_CREATOR = "jdy-admin"  # data_creator when none is given
ROOT_DEPARTMENT = 1

DEPARTMENTS = {
    d.dept_no: d
    for d in (
        Department(1, "示例公司", None),
        Department(2, "销售部", 1),
        Department(3, "市场部", 1),
        Department(4, "华东销售组", 2),
    )
}
MEMBERS = {
    m.username: m
    for m in (
        Member("jdy-admin", "管理员", (1,), "admin@example.com"),
        Member("zhangsan", "张三", (2,), "zhangsan@example.com"),
        Member("lisi", "李四", (2,), "lisi@example.com"),
        Member("wangwu", "王五", (3,), "wangwu@example.com"),
        Member("zhaoliu", "赵六", (4,), "zhaoliu@example.com"),
        Member("zhangwei", "张伟", (3,), "zhangwei@example.com"),
        Member("zhangwei2", "张伟", (4,), "zhangwei2@example.com"),
    )
}


def member(username: str) -> dict[str, Any]:
    """A member as a `user` widget, `creator` or `updater` reads (no email there)."""
    m = MEMBERS[username]
    return {
        "name": m.name,
        "username": m.username,
        "status": 1,
        "type": 0,
        "departments": list(m.departments),
        "integrate_id": None,
    }


def department(dept_no: int) -> dict[str, Any]:
    """A department as a `dept` widget reads."""
    d = DEPARTMENTS[dept_no]
    return {
        "name": d.name,
        "dept_no": d.dept_no,
        "type": 1 if d.parent_no is None else 0,
        "parent_no": d.parent_no,
        "status": 1,
        "integrate_id": None,
    }


def under(dept_no: int, recursive: bool) -> list[int]:
    """The departments under `dept_no` (its children; with `recursive`, theirs too)."""
    children = [d.dept_no for d in DEPARTMENTS.values() if d.parent_no == dept_no]
    if not recursive:
        return children
    return children + [n for child in children for n in under(child, True)]


def listed_department(dept_no: int) -> dict[str, Any]:
    """A department as `corp/department/list` answers it."""
    d = DEPARTMENTS[dept_no]
    return {"dept_no": d.dept_no, "name": d.name, "parent_no": d.parent_no, "type": 0, "status": 1}


def listed_member(username: str) -> dict[str, Any]:
    """A member as `corp/department/user/list` and `corp/user/get` answer it."""
    m = MEMBERS[username]
    return {
        "username": m.username,
        "name": m.name,
        "departments": list(m.departments),
        "type": 0,
        "status": 1,
        "email": m.email,
    }


def members_in(departments: set[int]) -> list[str]:
    return [m.username for m in MEMBERS.values() if departments & set(m.departments)]
