"""The audit trail (historico_ajustes) and system events (logs_sistema) as history reads
them: the events are gateway_common.audit.AuditEvent and gateway_common.system_events.
SystemEvent; here are the filters of their lists. Standard library only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway_common.system_events import Severity

SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


@dataclass(frozen=True)
class AdjustmentFilter:
    tenant_id: str  # "" = every tenant and the platform's own (platform admins only)
    user_id: str = ""
    resource: str = ""
    action: str = ""
    resource_id: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def scope(self) -> dict[str, Any]:
        """What a page token is bound to: the same filters."""
        return {
            "list": "adjustments",
            "t": self.tenant_id,
            "u": self.user_id,
            "r": self.resource,
            "a": self.action,
            "i": self.resource_id,
            "s": _ms(self.start),
            "e": _ms(self.end),
        }


@dataclass(frozen=True)
class SystemEventFilter:
    service: str = ""
    event: str = ""
    min_severity: Severity | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def severities(self) -> list[str]:
        """The severities at least ``min_severity`` (all when unset)."""
        floor = SEVERITY_RANK[self.min_severity] if self.min_severity else 0
        return [s.value for s, rank in SEVERITY_RANK.items() if rank >= floor]

    def scope(self) -> dict[str, Any]:
        return {
            "list": "system_events",
            "svc": self.service,
            "ev": self.event,
            "sev": self.min_severity.value if self.min_severity else "",
            "s": _ms(self.start),
            "e": _ms(self.end),
        }
