"""Errors the domain raises; entrypoints map them to gRPC status codes (see grpc_server)."""


MESSAGE_MAX_LEN = 600


class DomainError(Exception):
    """Base class. `message` is safe to show to the caller: never longer than MESSAGE_MAX_LEN,
    so an error quoting its input cannot echo a large one back (quote with fields.excerpt)."""

    def __init__(self, message: str):
        if len(message) > MESSAGE_MAX_LEN:
            message = message[:MESSAGE_MAX_LEN - 1] + "…"
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """Bad input: maps to INVALID_ARGUMENT. `field` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(DomainError):
    """Unknown id: maps to NOT_FOUND."""


class RuleRefused(DomainError):
    """A domain rule refuses the request: maps to FAILED_PRECONDITION. `rule` is a rule code."""

    def __init__(self, rule: str, message: str):
        super().__init__(f"[{rule}] {message}")
        self.rule = rule


class Conflict(DomainError):
    """The request conflicts with earlier state (e.g. idempotency key reused): ALREADY_EXISTS."""


class Unauthenticated(DomainError):
    """Missing or wrong credentials: UNAUTHENTICATED."""


class PermissionDenied(DomainError):
    """Known caller without the role for this call: PERMISSION_DENIED."""
