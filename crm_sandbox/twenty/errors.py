"""Twenty's error answers: `{"statusCode", "error", "messages"}` (docs/api/twenty.md §1)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

ERROR_NAMES = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    503: "ServiceUnavailableException",
}


class ApiError(Exception):
    """An error the API answers with; raising it anywhere in a handler rejects the request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return error_response(self.status, self.message, headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"statusCode": status, "error": ERROR_NAMES[status], "messages": [message]}
    return JSONResponse(body, status_code=status, headers=headers)


def show(value: Any, limit: int = 80) -> str:
    """A written value as it appears in an error message: JSON, shortened."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
