"""Errors in the provider's format: `{"code", "message", "errors": [{"code", "field", "message"}]}`
(both seeds give this shape; the codes besides `error_validation` are ours)."""

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class FieldError:
    code: str
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass
class ApiProblem(Exception):
    """Raised anywhere while answering a request; the server turns it into the error body."""

    status: int
    code: str
    message: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "errors": [error.as_json() for error in self.errors],
        }


def validation_failed(errors: list[FieldError]) -> ApiProblem:
    return ApiProblem(400, "error_validation", "Validation error.", errors)


def invalid(field_name: str, code: str, message: str) -> ApiProblem:
    return validation_failed([FieldError(code, field_name, message)])


def not_found(field_name: str, value: str) -> ApiProblem:
    return ApiProblem(
        404,
        "error_not_found",
        "Not found.",
        [FieldError("err_not_found", field_name, f"{value} was not found")],
    )


def unauthorized(code: str, field_name: str, message: str) -> ApiProblem:
    return ApiProblem(
        401,
        "error_unauthorized",
        "Unauthorized.",
        [FieldError(code, field_name, message)],
        {"WWW-Authenticate": 'Bearer realm="everactive"'},
    )


def injected(status: int, retry_after_s: float | None) -> ApiProblem:
    """A failure `ProviderApi.fail_next` asked for (429 throttling, 5xx outages)."""
    code = "error_rate_limited" if status == 429 else f"error_{status}"
    headers = {} if retry_after_s is None else {"Retry-After": _seconds(retry_after_s)}
    return ApiProblem(status, code, HTTPStatus(status).phrase + ".", [], headers)


def _seconds(value: float) -> str:
    """Retry-After carries whole seconds (RFC 9110): round up so a client never retries early."""
    whole = int(value)
    return str(whole if whole == value else whole + 1)
