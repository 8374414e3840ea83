"""The services' branch of the project's exception tree."""

from __future__ import annotations

from clippings.errors import ClippingsError


class ServiceError(ClippingsError):
    """A streaming service cannot go on."""


class BrokerUnavailable(ServiceError):
    """No broker answered for longer than broker_timeout_s."""


class DeliveryFailed(ServiceError):
    """The broker refused or timed out a produced message; offsets stay uncommitted."""


class StateStoreUnavailable(ServiceError):
    """Redis did not answer for longer than redis_timeout_s."""


class SnapshotError(ServiceError):
    """A linker snapshot cannot be written or read back."""


class StackError(ServiceError):
    """The local stack (broker, Redis, services) could not be started."""


class RejectedEvent(ClippingsError):
    """One event that cannot be processed; it goes to the DLQ with `reason`, the stream goes on."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
