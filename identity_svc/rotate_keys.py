"""Re-encrypt every stored provider credential with the active key (the first of
IDENTITY_ENCRYPTION_KEYS): ``python -m identity_svc.rotate_keys``. Idempotent; run it
after adding a new key in front, then drop the old key from the ring."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from gateway_common import db
from gateway_common.audit_outbox import SqlSystemEventLog
from gateway_common.system_events import Severity, SystemEvent
from identity_svc.bootstrap import keyring
from identity_svc.config import IdentitySettings
from identity_svc.crypto import KeyRing, credential_context
from identity_svc.postgres_tables import configuracao_llm, implantacao_llm


async def rotate(database_url: str, ring: KeyRing) -> int:
    """Number of credentials re-encrypted, in one transaction (rows locked meanwhile)."""
    engine = db.make_engine(database_url, pool_size=1)
    c, done = implantacao_llm.c, 0
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                select(c.implantacao_id, c.distribuidor_id, configuracao_llm.c.llm_id, c.chave_api)
                .join(configuracao_llm, configuracao_llm.c.config_llm_id == c.config_llm_id)
                .where(c.chave_api.is_not(None), c.chave_api != "")
                .with_for_update(of=implantacao_llm)
            )
            for deployment_id, tenant_id, model_id, stored in rows.all():
                if not ring.needs_rotation(stored):
                    continue
                context = credential_context(str(tenant_id), str(model_id))
                fresh = ring.encrypt(ring.decrypt(stored, context), context)
                await conn.execute(
                    update(implantacao_llm)
                    .where(c.implantacao_id == deployment_id)
                    .values(chave_api=fresh)
                )
                done += 1
            # Recorded with the rotation itself, in identity's outbox (logs_sistema).
            event = SystemEvent(
                "identity",
                "key_ring_rotated",
                Severity.INFO,
                {"active_key_id": ring.active_kid, "re_encrypted": done},
            )
            await SqlSystemEventLog(conn).record(event)
    finally:
        await engine.dispose()
    return done


def main() -> None:
    settings = IdentitySettings()
    count = asyncio.run(rotate(settings.database_url, keyring(settings)))
    print(f"re-encrypted {count} credential(s) with the active key")


if __name__ == "__main__":
    main()
