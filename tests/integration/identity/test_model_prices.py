"""Model prices (llm_modelo.preco_*_milhao): stored exactly, shown in nanos of the platform
currency, edited with the update mask, resolved for llm's cost of each call."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from google.protobuf import field_mask_pb2

from llmgw.identity.v1 import identity_pb2 as pb
from tests.integration.identity.conftest import AUTH_TTL

C = grpc.StatusCode


async def test_prices_are_stored_edited_and_resolved(client):
    tid = (await client.tenant()).tenant_id
    name = f"priced-{uuid.uuid4().hex[:6]}"
    m = pb.Model(
        tenant_id=tid, name=name, provider="OpenAI", access_type=pb.ACCESS_TYPE_CLOUD,
        input_price_nanos_per_million=150_000_000,  # 0.15 per million prompt tokens
        output_price_nanos_per_million=600_000_001,  # exact to the nano
    )  # fmt: skip
    created = (await client.call("CreateModel", pb.CreateModelRequest(model=m))).model
    assert created.input_price_nanos_per_million == 150_000_000
    assert created.output_price_nanos_per_million == 600_000_001
    assert created.currency == "USD"
    config = await client.call(
        "CreateModelConfig",
        pb.CreateModelConfigRequest(
            config=pb.ModelConfig(tenant_id=tid, model_id=created.model_id)
        ),
    )
    await client.deploy(tid, config.config.config_id, credential="sk")
    resolved = await client.resolve(tid, name)
    assert resolved.model.input_price_nanos_per_million == 150_000_000
    change = pb.Model(model_id=created.model_id, input_price_nanos_per_million=2_000_000_000)
    paths = ["input_price_nanos_per_million", "output_price_nanos_per_million"]
    updated = await client.call(
        "UpdateModel",
        pb.UpdateModelRequest(model=change, update_mask=field_mask_pb2.FieldMask(paths=paths)),
    )
    assert updated.model.input_price_nanos_per_million == 2_000_000_000
    assert not updated.model.HasField("output_price_nanos_per_million")  # unset: no price
    await asyncio.sleep(AUTH_TTL + 0.05)
    resolved = await client.resolve(tid, name)
    assert resolved.model.input_price_nanos_per_million == 2_000_000_000
    bad = pb.Model(model_id=created.model_id, input_price_nanos_per_million=-1)
    req = pb.UpdateModelRequest(model=bad, update_mask=field_mask_pb2.FieldMask(paths=paths[:1]))
    assert (await client.fails("UpdateModel", req))[0] == C.INVALID_ARGUMENT
