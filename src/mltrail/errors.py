"""Errors carry MLflow's error codes so that every layer (stores, server, clients) speaks one language.

The server turns an :class:`MltrailException` into ``{"error_code": ..., "message": ...}`` with the HTTP
status MLflow uses for that code; the REST client turns such a response back into the same exception.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_STATE = "INVALID_STATE"
    DATA_LOSS = "DATA_LOSS"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    CANCELLED = "CANCELLED"
    NOT_FOUND = "NOT_FOUND"
    ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CUSTOMER_UNAUTHORIZED = "CUSTOMER_UNAUTHORIZED"
    BAD_REQUEST = "BAD_REQUEST"
    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    ABORTED = "ABORTED"
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
    ALREADY_EXISTS = "ALREADY_EXISTS"


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.INVALID_STATE: 500,
    ErrorCode.DATA_LOSS: 500,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.TEMPORARILY_UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.REQUEST_LIMIT_EXCEEDED: 429,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.CANCELLED: 499,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ENDPOINT_NOT_FOUND: 404,
    ErrorCode.RESOURCE_DOES_NOT_EXIST: 404,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.CUSTOMER_UNAUTHORIZED: 401,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_PARAMETER_VALUE: 400,
    ErrorCode.RESOURCE_ALREADY_EXISTS: 400,
    ErrorCode.ABORTED: 409,
    ErrorCode.RESOURCE_CONFLICT: 409,
    ErrorCode.ALREADY_EXISTS: 409,
}

_STATUS_TO_CODE: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.ENDPOINT_NOT_FOUND,
    409: ErrorCode.RESOURCE_CONFLICT,
    429: ErrorCode.REQUEST_LIMIT_EXCEEDED,
    501: ErrorCode.NOT_IMPLEMENTED,
    503: ErrorCode.TEMPORARILY_UNAVAILABLE,
    504: ErrorCode.DEADLINE_EXCEEDED,
}


#: Codes that may succeed when the same request is sent again; a client retries only these (and plain HTTP
#: failures). MLflow answers INVALID_STATE with 500 too, but sending the same request again cannot help.
TRANSIENT_ERROR_CODES = frozenset(
    {
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.TEMPORARILY_UNAVAILABLE,
        ErrorCode.DEADLINE_EXCEEDED,
        ErrorCode.REQUEST_LIMIT_EXCEEDED,
        ErrorCode.RESOURCE_EXHAUSTED,
    }
)

#: Response header in which mltrail's server repeats the error code, so a client can decide to retry from the
#: headers alone (the body of a response being retried is never read).
ERROR_CODE_HEADER = "X-Mltrail-Error-Code"


def http_status_for(code: str) -> int:
    """HTTP status MLflow's server uses for ``code``; unknown codes map to 500."""
    try:
        return _HTTP_STATUS[ErrorCode(code)]
    except ValueError:
        return 500


def error_code_for_status(status: int) -> ErrorCode:
    """Error code a client assumes for a non-JSON error response with HTTP ``status``."""
    return _STATUS_TO_CODE.get(status, ErrorCode.INTERNAL_ERROR)


class MltrailException(Exception):
    """An error with an MLflow error code. The message is shown to users as is."""

    def __init__(self, message: str, error_code: str = ErrorCode.INTERNAL_ERROR) -> None:
        super().__init__(message)
        self.message = message
        try:
            self.error_code: str = ErrorCode(error_code).value
        except ValueError:
            self.error_code = str(error_code)

    @property
    def http_status(self) -> int:
        return http_status_for(self.error_code)

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}

    @classmethod
    def invalid_parameter(cls, message: str) -> MltrailException:
        return cls(message, ErrorCode.INVALID_PARAMETER_VALUE)

    @classmethod
    def not_found(cls, message: str) -> MltrailException:
        return cls(message, ErrorCode.RESOURCE_DOES_NOT_EXIST)

    @classmethod
    def already_exists(cls, message: str) -> MltrailException:
        return cls(message, ErrorCode.RESOURCE_ALREADY_EXISTS)

    def __repr__(self) -> str:
        return f"MltrailException({self.error_code}: {self.message!r})"


#: Alias so code written against MLflow's exception name reads naturally.
MlflowException = MltrailException
