"""Create a platform-admin API key and print its secret once:
``python -m identity_svc.create_admin_key [--name NAME]`` (applies migrations first)."""

from __future__ import annotations

import argparse
import asyncio

from gateway_common import db
from identity_svc import migrate
from identity_svc.config import IdentitySettings
from identity_svc.service_api_keys import ApiKeyUseCases
from identity_svc.unit_of_work import sql_uow_factory


async def create_key(database_url: str, name: str) -> tuple[str, str]:
    """(key id, secret) of a new platform-admin key."""
    engine = db.make_engine(database_url, pool_size=1)
    try:
        keys = ApiKeyUseCases(sql_uow_factory(engine))
        key, secret = await keys.issue_platform_admin_key(name)
        return key.key_id, secret
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="platform admin", help="label of the key")
    args = parser.parse_args(argv)
    settings = IdentitySettings()
    migrate.upgrade(settings.migrations_url())
    key_id, secret = asyncio.run(create_key(settings.database_url, args.name))
    print(f"key_id: {key_id}")
    print(f"api_key: {secret}")
    print("Store it now: it is shown only this once.")


if __name__ == "__main__":
    main()
