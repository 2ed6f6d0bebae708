"""RecordInteractions: a batch stored once per interaction id, erased users' records dropped.

Per batch: validate each interaction (a bad one is REJECTED alone); drop those an existing
tombstone covers (ERASED); insert the rest unordered, so a duplicate id fails only itself
(DUPLICATE, or REJECTED when the id belongs to another tenant); then read the tombstones
again and delete what an erasure that ran meanwhile covers. An erasure writes its tombstone
before it deletes, so every interleaving ends with the erased user's records gone. Last,
the daily rollups of every (tenant, user, model, day) the batch touched are recomputed from
the raw documents, duplicates included: a replay after a crash repairs them.
"""

from __future__ import annotations

import asyncio

from gateway_common.errors import InvalidArgument
from history_svc.domain import DayKey, Erasure, Interaction, Outcome, RecordResult
from history_svc.ports import InteractionRepository, RollupRepository

Entry = Interaction | RecordResult  # a RecordResult is an entry refused while parsing
Users = dict[tuple[str, str], Erasure]
CONFLICT = "INTERACTION_ID_CONFLICT"


class Recorder:
    def __init__(
        self, repository: InteractionRepository, rollups: RollupRepository, max_text_bytes: int
    ) -> None:
        self.repository = repository
        self.rollups = rollups
        self.max_text_bytes = max_text_bytes

    async def record(self, entries: list[Entry]) -> list[RecordResult]:
        results: dict[int, RecordResult] = {}
        items: dict[int, Interaction] = {}  # the valid ones, normalized
        for i, entry in enumerate(entries):
            if isinstance(entry, RecordResult):
                results[i] = entry
                continue
            try:
                items[i] = entry.normalized(self.max_text_bytes)
            except InvalidArgument as exc:
                results[i] = _rejected(entry, exc.reason, exc.message)
        first: dict[str, int] = {}  # interaction id -> index of its first occurrence
        for i, item in items.items():
            first.setdefault(item.interaction_id, i)
        unique = {i: items[i] for i in first.values()}
        erased = await self._erasures(list(unique.values()))
        fresh = [i for i, item in unique.items() if not _covered(erased, item)]
        results.update({i: _result(unique[i], Outcome.ERASED) for i in unique if i not in fresh})
        outcomes = await self.repository.insert_many([items[i] for i in fresh])
        stored: list[int] = []
        for i, outcome in zip(fresh, outcomes, strict=True):
            if outcome is Outcome.CREATED:
                stored.append(i)
            elif outcome is Outcome.REJECTED:
                results[i] = _rejected(items[i], "UNSTORABLE", "the store cannot hold it")
        results.update(await self._newly_erased([(i, items[i]) for i in stored]))
        for i in stored:
            results.setdefault(i, _result(items[i], Outcome.CREATED))
        await self._duplicates(items, first, results)
        await self.rollups.refresh(sorted({DayKey.of(item) for item in unique.values()}))
        return [results[i] for i in range(len(entries))]

    async def _erasures(self, items: list[Interaction]) -> Users:
        users = sorted({(item.tenant_id, item.user_id) for item in items})
        return {(e.tenant_id, e.user_id): e for e in await self.repository.erasures(users)}

    async def _newly_erased(self, stored: list[tuple[int, Interaction]]) -> dict[int, RecordResult]:
        """An erasure that ran while this batch was inserting: drop what it covers."""
        erased = await self._erasures([item for _, item in stored])
        doomed: dict[tuple[str, str], list[tuple[int, Interaction]]] = {}
        for i, item in stored:
            if _covered(erased, item):
                doomed.setdefault((item.tenant_id, item.user_id), []).append((i, item))
        await asyncio.gather(
            *(
                self.repository.drop(tenant, user, [item.interaction_id for _, item in rows])
                for (tenant, user), rows in doomed.items()
            )
        )
        return {i: _result(item, Outcome.ERASED) for rows in doomed.values() for i, item in rows}

    async def _duplicates(
        self, items: dict[int, Interaction], first: dict[str, int], results: dict[int, RecordResult]
    ) -> None:
        """Ids seen before: DUPLICATE in their own tenant, never shown to another."""
        stored_before = [i for i in first.values() if i not in results]
        tenants = await asyncio.gather(
            *(self.repository.tenant_of(items[i].interaction_id) for i in stored_before)
        )
        owners = {items[i].interaction_id: t for i, t in zip(stored_before, tenants, strict=True)}
        for i in stored_before:
            results[i] = _owned(items[i], owners[items[i].interaction_id])
        for i, item in items.items():
            if i in results:
                continue
            earlier = results[first[item.interaction_id]]  # a repeat inside this batch
            if earlier.outcome is Outcome.CREATED:
                results[i] = _owned(item, items[first[item.interaction_id]].tenant_id)
            elif earlier.outcome is Outcome.DUPLICATE or earlier.reason == CONFLICT:
                results[i] = _owned(item, owners.get(item.interaction_id))
            else:
                results[i] = RecordResult(
                    item.interaction_id, earlier.outcome, earlier.reason, earlier.message
                )


def _owned(item: Interaction, owner: str | None) -> RecordResult:
    # None: stored, then erased meanwhile; it will not be stored again.
    if owner is None or owner == item.tenant_id:
        return _result(item, Outcome.DUPLICATE)
    return _rejected(item, CONFLICT, "interaction_id already used by another interaction")


def _covered(erased: Users, item: Interaction) -> bool:
    erasure = erased.get((item.tenant_id, item.user_id))
    return erasure is not None and erasure.covers(item)


def _result(item: Interaction, outcome: Outcome) -> RecordResult:
    return RecordResult(item.interaction_id, outcome)


def _rejected(item: Interaction, reason: str, message: str) -> RecordResult:
    return RecordResult(item.interaction_id, Outcome.REJECTED, reason, message)
