"""Ops use cases on the settlement outbox: list and retry dead letters (platform admins)."""

from __future__ import annotations

from gateway_common.outbox import DeadLetter, OutboxStore
from gateway_common.pagination import PageTokens, clamp_page_size
from gateway_common.principal import Principal

_SCOPE = {"list": "dead_letters"}


class DeliveryService:
    def __init__(self, store: OutboxStore, pages: PageTokens) -> None:
        self._store = store
        self._pages = pages

    async def dead_letters(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[DeadLetter], str]:
        principal.require_platform_admin()
        size = clamp_page_size(page_size, 50, 500)
        after = self._pages.decode_position(page_token, _SCOPE)
        found = await self._store.dead_letters(after, size + 1)
        return self._pages.next_page(found, size, lambda d: (d.created_at, d.id), _SCOPE)

    async def retry(self, principal: Principal, ids: list[str]) -> int:
        principal.require_platform_admin()
        return await self._store.retry_dead(ids)
