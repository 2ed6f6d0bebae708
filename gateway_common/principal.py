"""Who is calling, as identity's Authenticate says, and the tenant checks every
service applies the same way. Standard library only."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway_common.errors import PermissionDenied


class Role(enum.Enum):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    role: Role
    tenant_id: str = ""
    user_id: str = ""
    key_id: str = ""
    time_zone: str = "UTC"

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    def require_platform_admin(self) -> None:
        if not self.is_platform_admin:
            raise PermissionDenied("only a platform admin may do this", "PLATFORM_ADMIN_REQUIRED")

    def require_tenant_admin(self, tenant_id: str) -> None:
        """Platform admins, or tenant admins of ``tenant_id``."""
        if self.is_platform_admin:
            return
        if self.role is Role.TENANT_ADMIN and self.tenant_id == tenant_id:
            return
        raise PermissionDenied("not allowed for this tenant", "TENANT_ACCESS_DENIED")

    def require_tenant_member(self, tenant_id: str, user_id: str = "") -> None:
        """Platform admins, tenant admins of ``tenant_id``, or the user ``user_id`` itself."""
        if self.is_platform_admin:
            return
        if self.tenant_id != tenant_id:
            raise PermissionDenied("not allowed for this tenant", "TENANT_ACCESS_DENIED")
        if self.role is Role.USER and user_id != self.user_id:
            raise PermissionDenied("users may only read their own data", "USER_ACCESS_DENIED")
