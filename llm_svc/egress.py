"""The provider transport under the platform's egress policy (``gateway_common.egress``).

The openai SDK's aiohttp transport connects through an aiohttp connector whose resolver
checks every address a name resolves to, and connects only to checked addresses (no second
lookup a rebinding DNS could answer differently). aiohttp never asks the resolver for an IP
literal, so a base URL's literal is checked before each call (``check_url``); redirects are not
followed, so a provider cannot send a call on to another destination; proxies from the
environment are ignored.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import httpx2
import openai
from aiohttp.abc import AbstractResolver, ResolveResult
from openai._vendor.httpx_aiohttp import AiohttpTransport

from gateway_common.egress import EgressPolicy, EgressRefused

MAX_CONNECTIONS = 1000  # the SDK's own default (openai DEFAULT_CONNECTION_LIMITS)


class CheckedResolver(AbstractResolver):
    """The default resolver, then the policy on each address it returned."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            why = self.policy.refusal_for_address(host, ipaddress.ip_address(result["host"]))
            if why is not None:
                raise EgressRefused(f"{host} resolves to {why}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def check_url(policy: EgressPolicy, url: str) -> None:
    why = policy.refusal_for_url(url)
    if why is not None:
        raise EgressRefused(f"the base URL names {why}")


def http_client(policy: EgressPolicy) -> openai.DefaultAioHttpClient:
    """The SDK's aiohttp client, connecting only where ``policy`` allows."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=CheckedResolver(policy),
            ssl=httpx2.create_ssl_context(),
            limit=MAX_CONNECTIONS,
        )
        return aiohttp.ClientSession(connector=connector)

    # trust_env=False: an HTTP(S)_PROXY from the environment would get its own transport,
    # past this resolver, and the proxy would be the destination checked.
    return openai.DefaultAioHttpClient(
        transport=AiohttpTransport(client=session), follow_redirects=False, trust_env=False
    )
