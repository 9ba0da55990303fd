"""Error answers, and the request parameters each endpoint reads (checked, or ApiError)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import JSONResponse, Response

from crm_sandbox.jiandaoyun.directory import COMPANY_CREATOR, DEPARTMENTS, MEMBERS

MAX_BATCH = 100
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Body = dict[str, Any]


class ApiError(Exception):
    """An error answer: HTTP `status` (400 unless told) with `{"code", "msg"}`."""

    def __init__(
        self, code: int | None, msg: str, status: int = 400, headers: dict | None = None
    ) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.headers = code, msg, status, headers

    def response(self) -> Response:
        body = {"msg": self.msg} if self.code is None else {"code": self.code, "msg": self.msg}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def bad_parameter(msg: str) -> ApiError:
    return ApiError(17017, msg)


def json_object(raw: bytes) -> Body:
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_parameter("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_parameter("the request body must be a JSON object")
    return body


def limit(body: Body, default: int) -> int:
    value = body.get("limit", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise bad_parameter("limit must be an integer from 1 to 100")
    return value


def skip(body: Body) -> int:
    value = body.get("skip", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_parameter("skip must be an integer >= 0")
    return value


def data(body: Body) -> Body:
    value = body.get("data")
    if not isinstance(value, dict):
        raise bad_parameter("data must be an object of wrapped values")
    return value


def data_id(body: Body) -> str:
    value = body.get("data_id")
    if not isinstance(value, str) or not value:
        raise bad_parameter("data_id must be a string")
    return value


def data_ids(body: Body, too_many: int) -> list[str]:
    ids = body.get("data_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise bad_parameter("data_ids must be a non-empty list of strings")
    if len(ids) > MAX_BATCH:
        raise ApiError(too_many, f"data_ids holds {len(ids)} ids, at most {MAX_BATCH}")
    return ids


def creator(body: Body) -> str:
    value = body.get("data_creator")
    if value is None:
        return COMPANY_CREATOR
    if not isinstance(value, str) or value not in MEMBERS:
        raise ApiError(1010, f"member {value!r} does not exist")
    return value


def flags(body: Body) -> None:
    for flag in ("is_start_workflow", "is_start_trigger"):
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise bad_parameter(f"{flag} must be true or false")


def transaction_id(body: Body) -> str | None:
    value = body.get("transaction_id")
    if value is None:
        return None
    if not isinstance(value, str) or "${" in value or "$(" in value or not UUID.fullmatch(value):
        raise ApiError(17025, "transaction_id must be a UUID")
    return value


def department(body: Body) -> tuple[int, bool]:
    """`dept_no` (a department of the directory) and `has_child` (default false)."""
    dept_no, has_child = body.get("dept_no"), body.get("has_child", False)
    if isinstance(dept_no, bool) or not isinstance(dept_no, int):
        raise bad_parameter("dept_no must be a department number")
    if dept_no not in DEPARTMENTS:
        raise bad_parameter(f"department {dept_no} does not exist")
    if not isinstance(has_child, bool):
        raise bad_parameter("has_child must be true or false")
    return dept_no, has_child
