"""The audit trail's events (history's ``historico_ajustes``), as every service writes them.
Standard library only.

Identity and quota write one :class:`AuditEvent` per admin mutation into their own outbox,
in the transaction of the change (``uow.audit.record(event)``): no change without its event,
no event without its change. Their relays deliver them to history (gateway_common.audit_outbox).
An event holds ids, names and limits: never a credential, a key's secret or an interaction's
text; a user's name and email are marked ``personal`` so history clears them on erasure.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway_common.principal import Principal

AUDIT_TOPIC = "audit"  # the outbox topic of audit events
SYSTEM_TOPIC = "system"  # the outbox topic of system events (gateway_common.system_events)

# The value a credential field takes in an event: never the credential itself.
CREDENTIAL_SET = "set"
CREDENTIAL_REPLACED = "replaced"
CREDENTIAL_REMOVED = "removed"


@dataclass(frozen=True)
class Actor:
    key_id: str
    role: str
    tenant_id: str = ""
    user_id: str = ""

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.key_id, principal.role.value, principal.tenant_id, principal.user_id)


@dataclass(frozen=True)
class Change:
    """One field, before and after (None: absent, as on a creation or a deletion)."""

    field: str
    before: Any = None
    after: Any = None
    personal: bool = False  # personal data: cleared when its user is erased


@dataclass(frozen=True)
class AuditEvent:
    service: str
    resource: str
    resource_id: str
    action: str
    actor: Actor
    tenant_id: str = ""  # the resource's tenant; "" for platform resources
    user_id: str = ""  # the user the change is about
    changes: tuple[Change, ...] = ()
    request_id: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class Events:
    """A service's event builder (``event = Events("identity")``): the author taken from
    the caller's key."""

    service: str

    def __call__(
        self,
        p: Principal,
        resource: str,
        resource_id: str,
        action: str,
        changes: tuple[Change, ...],
        *,
        tenant_id: str = "",
        user_id: str = "",
        request_id: str = "",
    ) -> AuditEvent:
        return AuditEvent(
            service=self.service,
            resource=resource,
            resource_id=resource_id,
            action=action,
            actor=Actor.of(p),
            tenant_id=tenant_id,
            user_id=user_id,
            changes=changes,
            request_id=request_id,
        )


def created(values: Mapping[str, Any], personal: Iterable[str] = ()) -> tuple[Change, ...]:
    """The changes of a creation: every field from nothing to its value."""
    private = set(personal)
    return tuple(Change(k, None, v, k in private) for k, v in values.items())


def deleted(values: Mapping[str, Any], personal: Iterable[str] = ()) -> tuple[Change, ...]:
    """The changes of a deletion: every field from its value to nothing."""
    private = set(personal)
    return tuple(Change(k, v, None, k in private) for k, v in values.items())


def forgotten(changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """The changes without their personal values (the fields and the ids stay)."""
    return tuple(Change(c.field, None, None, True) if c.personal else c for c in changes)


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], personal: Iterable[str] = ()
) -> tuple[Change, ...]:
    """The fields whose value differs, in ``after``'s order."""
    private = set(personal)
    return tuple(
        Change(k, before.get(k), v, k in private) for k, v in after.items() if before.get(k) != v
    )


def plain(value: Any) -> Any:
    """A JSON-able value of a field: datetimes as RFC 3339 text, enums by value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    return value


class AuditLog(abc.ABC):
    """The port: an event written in the unit of work's transaction."""

    @abc.abstractmethod
    async def record(self, event: AuditEvent) -> None: ...
