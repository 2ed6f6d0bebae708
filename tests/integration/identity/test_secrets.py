"""Provider credentials: encrypted at rest, never returned publicly, never logged."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import psycopg
from google.protobuf import field_mask_pb2

from gateway_common import db
from gateway_common.idempotency import RequestKey
from gateway_common.principal import Principal, Role
from identity_svc import migrate
from identity_svc.crypto import KeyRing
from identity_svc.domain import AccessType, Deployment, Model, ModelConfig
from identity_svc.rotate_keys import rotate
from identity_svc.service import TenantUseCases
from identity_svc.service_llm_configs import ModelConfigUseCases
from identity_svc.service_llm_deployments import DeploymentUseCases
from identity_svc.service_llm_models import ModelUseCases, ResolveCache, ResolveUseCase
from identity_svc.unit_of_work import sql_uow_factory
from llmgw.identity.v1 import identity_pb2 as pb
from tests.support import fresh_pg_database, sqlalchemy_url


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


async def _configured(client, credential: str) -> tuple[str, str, str]:
    tid = (await client.tenant()).tenant_id
    name = f"secret-model-{uuid.uuid4().hex[:6]}"
    model = (
        await client.call(
            "CreateModel",
            pb.CreateModelRequest(
                model=pb.Model(
                    tenant_id=tid, name=name, provider="OpenAI", access_type=pb.ACCESS_TYPE_CLOUD
                )
            ),
        )
    ).model
    config = (
        await client.call(
            "CreateModelConfig",
            pb.CreateModelConfigRequest(
                config=pb.ModelConfig(tenant_id=tid, model_id=model.model_id)
            ),
        )
    ).config
    deployment = await client.deploy(tid, config.config_id, credential)
    return tid, name, deployment.deployment_id


async def test_no_plaintext_credential_in_the_database(client, database_url):
    credential = f"sk-live-{uuid.uuid4().hex}"
    tid, name, deployment_id = await _configured(client, credential)
    with psycopg.connect(_libpq(database_url)) as conn:
        rows = conn.execute("SELECT implantacao_llm::text FROM implantacao_llm").fetchall()
        rows += conn.execute("SELECT configuracao_llm::text FROM configuracao_llm").fetchall()
        dump = "\n".join(str(r) for r in rows)
        (stored, config_id) = conn.execute(
            "SELECT chave_api, config_llm_id::text FROM implantacao_llm WHERE implantacao_id = %s",
            (deployment_id,),
        ).fetchone()
    assert credential not in dump and credential[8:] not in dump
    assert stored.startswith("v1:k2:")
    # Public RPCs only say that one exists.
    listed = await client.call(
        "ListModelDeployments", pb.ListModelDeploymentsRequest(tenant_id=tid, config_id=config_id)
    )
    assert listed.deployments[0].has_credential and credential not in str(listed)
    (resolved,) = (await client.resolve(tid, name)).deployments
    assert resolved.credential == credential


async def test_no_credential_in_logs(client, caplog):
    credential = f"sk-logged-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    tid, name, deployment_id = await _configured(client, credential)
    await client.call(
        "UpdateModelDeployment",
        pb.UpdateModelDeploymentRequest(
            deployment=pb.ModelDeployment(tenant_id=tid, deployment_id=deployment_id),
            credential=credential + "2",
            update_mask=field_mask_pb2.FieldMask(paths=["credential"]),
        ),
    )
    await asyncio.sleep(0.05)
    resolved = await client.resolve(tid, name)
    assert resolved.deployments[0].credential == credential + "2"
    assert caplog.records, "expected the service to log something at DEBUG"
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert credential not in text


async def test_key_rotation_then_the_old_key_can_be_dropped():
    """README's procedure: add a key in front, rotate_keys, drop the old key."""
    k_old, k_new = os.urandom(32), os.urandom(32)
    admin = Principal(Role.PLATFORM_ADMIN, key_id="test")
    with fresh_pg_database("identity_rot") as dsn:
        url = sqlalchemy_url(dsn)
        migrate.upgrade(url)
        engine = db.make_engine(url, pool_size=2)
        uow = sql_uow_factory(engine)
        try:
            tenant = await TenantUseCases(uow).create(admin, "t", "", "", RequestKey("", ""))
            draft = Model("", "m", "OpenAI", AccessType.CLOUD, tenant_id=tenant.tenant_id)
            model = await ModelUseCases(uow).create(admin, draft, RequestKey("", ""))
            config = await ModelConfigUseCases(uow).create(
                admin, ModelConfig("", tenant.tenant_id, model.model_id), RequestKey("", "")
            )
            row = Deployment("", tenant.tenant_id, config.config_id)
            await DeploymentUseCases(uow, KeyRing([("old", k_old)])).create(
                admin, row, "sk-rotated", RequestKey("", "")
            )
            both = KeyRing([("new", k_new), ("old", k_old)])
            assert await rotate(url, both) == 1
            assert await rotate(url, both) == 0  # idempotent
            only_new = KeyRing([("new", k_new)])
            resolver = ResolveUseCase(uow, only_new, ResolveCache(0, 0))
            (resolved,) = (await resolver.resolve(tenant.tenant_id, "m")).deployments
            assert resolved.credential == "sk-rotated"
        finally:
            await engine.dispose()
