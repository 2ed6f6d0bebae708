"""Ops use cases on the settlement outbox: list and retry dead letters (platform admins)."""

from __future__ import annotations

from datetime import datetime

from gateway_common.errors import InvalidArgument
from gateway_common.outbox import DeadLetter, OutboxStore
from gateway_common.pagination import clamp_page_size, decode_token, encode_token
from gateway_common.principal import Principal

_SCOPE = {"list": "dead_letters"}


class DeliveryService:
    def __init__(self, store: OutboxStore) -> None:
        self._store = store

    async def dead_letters(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[DeadLetter], str]:
        principal.require_platform_admin()
        size = clamp_page_size(page_size, 50, 500)
        key = _position(decode_token(page_token, _SCOPE))
        found = await self._store.dead_letters(key, size + 1)
        page, more = found[:size], len(found) > size
        token = encode_token([page[-1].created_at.isoformat(), page[-1].id], _SCOPE) if more else ""
        return page, token

    async def retry(self, principal: Principal, ids: list[str]) -> int:
        principal.require_platform_admin()
        return await self._store.retry_dead(ids)


def _position(after: list[object] | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    try:
        return datetime.fromisoformat(str(after[0])), str(after[1])
    except (ValueError, IndexError):
        raise InvalidArgument.field("page_token", "malformed page token") from None
