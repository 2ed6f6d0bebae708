"""Scenario files: env templates resolved for the runner, every file a valid ghz config."""

import json

import pytest

from bench.catalog import SPECS
from bench.drivers import SCENARIO_DIR, load_scenario, resolve


def test_resolve_env_templates_with_defaults_and_escaping():
    text = (
        '{"a": "Bearer {{env `KEY`}}", "b": "{{env `M` | default `bench-model`}}",'
        ' "c": "{{.UUID}}"}'
    )
    out = json.loads(resolve(text, {"KEY": 'k"1'}))
    assert out == {"a": 'Bearer k"1', "b": "bench-model", "c": "{{.UUID}}"}
    assert json.loads(resolve(text, {"KEY": "", "M": "gpt"}))["b"] == "gpt"


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.json")), ids=lambda p: p.name)
def test_scenario_files_are_complete(path):
    config = load_scenario(path.name, {})
    if "path" in config:  # an HTTP request for hey
        assert config["path"] == "/v1/chat/completions" and config["body"]["model"]
        return
    assert config["call"].startswith(("llmgw.", "bench.echo."))
    assert "/" in config["call"] and config["insecure"] is True
    assert "data" in config
    assert "{{env" not in json.dumps(config)  # the runner leaves no per-call env lookups


def test_every_spec_has_its_files():
    for spec in SPECS:
        assert (SCENARIO_DIR / spec.file).exists()
        if spec.commit:
            assert (SCENARIO_DIR / spec.commit).exists()


def test_reserve_and_settle_use_the_same_ids_and_subject():
    prefix = "0b5e6c1a-2f3d-4e5f-8a9b-"  # + 12 digits: a UUID, as history wants
    values = {"BENCH_ID_PREFIX": prefix, "BENCH_TENANT_ID": "t", "BENCH_USER_ID": "u"}
    reserve = load_scenario("quota_reserve.json", values)
    settle = load_scenario("quota_settle.json", values)["data"]
    rid = prefix + "{{printf `%012d` .RequestNumber}}"
    assert settle["interaction"]["timestamp"] == "{{.Timestamp}}"
    assert reserve["data"]["request_id"] == settle["request_id"] == rid
    assert settle["interaction"]["interaction_id"] == rid
    assert (settle["interaction"]["tenant_id"], settle["interaction"]["user_id"]) == ("t", "u")


def test_every_http_target_gets_the_same_body():
    files = [s.file for s in SPECS if s.tool == "hey"]
    assert {"http_chat.json", "litellm_chat.json", "portkey_chat.json"} <= set(files)
    bodies = {json.dumps(load_scenario(f, {})["body"], sort_keys=True) for f in files}
    assert len(bodies) == 1


def test_portkey_is_pointed_at_the_provider_by_its_headers():
    headers = load_scenario("portkey_chat.json", {"BENCH_PROVIDER_URL": "http://h:1/v1"})["headers"]
    assert headers["x-portkey-provider"] == "openai"
    assert headers["x-portkey-custom-host"] == "http://h:1/v1"
