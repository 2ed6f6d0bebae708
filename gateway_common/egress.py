"""Where provider calls may go: a platform setting (``GATEWAY_EGRESS_ALLOW``), never a tenant's.

By default only public (globally routable) addresses are allowed: private, loopback,
link-local, carrier-grade NAT, multicast and reserved ranges are refused, and so are cloud
metadata endpoints always, whatever the allow list says. The allow list adds CIDR ranges
(``10.20.0.0/16``, ``127.0.0.0/8``, ``::1/128``) and host names (``llm.corp.example``, or
``.corp.example`` for a domain and its subdomains) for models the platform serves itself.

identity checks a base URL when it is set, with what is known without DNS (an IP literal, a
metadata or localhost name); llm checks every address a name resolves to when it connects
(``llm_svc/egress.py``), so a name that resolves to a refused address is refused too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS, GCP, Azure, OpenStack; AWS IPv6; ECS; Alibaba; Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
     "instance-data.ec2.internal", "metadata.azure.internal"}
)  # fmt: skip
LOOPBACK_NAMES = ("localhost",)


def _host_entry(entry: str) -> str:
    name = entry.lower().rstrip(".")
    if not name.lstrip(".") or "/" in name or ":" in name:
        raise ValueError(f"GATEWAY_EGRESS_ALLOW: not a CIDR nor a host: {entry!r}")
    return name


class EgressRefused(Exception):
    """A destination outside the platform's egress policy (not an OSError on purpose: it
    must not read as a connection failure to retry)."""


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # exact names, or ".domain" for the domain and below

    @classmethod
    def parse(cls, spec: str) -> EgressPolicy:
        """Entries separated by commas or spaces; ValueError names a bad one."""
        networks: list[Network] = []
        hosts: list[str] = []
        for entry in spec.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.append(_host_entry(entry))
        return cls(tuple(networks), tuple(hosts))

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(
            name == h or (h.startswith(".") and (name.endswith(h) or name == h[1:]))
            for h in self.hosts
        )

    def refusal_for_address(self, host: str, address: Address) -> str | None:
        """Why ``address`` (``host`` resolved to it) is refused, or None when allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if self.host_allowed(host) or any(address in n for n in self.networks):
            return None
        if not address.is_global or address.is_multicast:
            return "a private, loopback, link-local or reserved address"
        return None

    def refusal_for_url(self, url: str) -> str | None:
        """What can be refused without DNS: the URL's IP literal, metadata and localhost names."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            return None  # the URL check of the caller refuses a URL without a host
        if host in METADATA_HOSTS:
            return "a cloud metadata host"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if host in LOOPBACK_NAMES or host.endswith(".localhost"):
                return self.refusal_for_address(host, ipaddress.ip_address("127.0.0.1"))
            return None
        return self.refusal_for_address(host, address)
