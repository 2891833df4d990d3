"""The one base class for refused domain transitions, shared by every app's services."""


class DomainError(Exception):
    """A change the domain refuses (illegal transition, bad reference); nothing was changed.

    `code` is a stable machine-readable slug for APIs; `str(error)` is the human message.
    """

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidTransition(DomainError):
    code = "invalid_transition"


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "permission_denied"
