"""The service helpers (DynamoDB Local, moto's server) listen on 127.0.0.1 only, never on every interface."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tests.services import DynamoDBLocal, LocalService, MotoServer

LISTEN = "0A"  # the TCP state /proc/net/tcp* gives a listening socket


def address_of(hex_host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A /proc/net/tcp* local address: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_host)
    address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def listening_on(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses of every socket of this machine listening on TCP `port`."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            host, port_hex = local.split(":")
            if state == LISTEN and int(port_hex, 16) == port:
                found.add(address_of(host))
    return found


def assert_loopback_only(service: LocalService) -> None:
    """The service listens, and only on loopback addresses."""
    addresses = listening_on(service.port)
    assert addresses, f"{service.name} does not listen on {service.port}"
    assert all(a.is_loopback for a in addresses), f"{service.name} listens on {sorted(map(str, addresses))}"


def test_dynamodb_local_listens_on_loopback_only(dynamodb_local: DynamoDBLocal) -> None:
    assert_loopback_only(dynamodb_local)


def test_moto_server_listens_on_loopback_only(moto_server: MotoServer) -> None:
    assert_loopback_only(moto_server)


def test_the_persistent_dynamodb_local_of_make_dynamodb_local_listens_on_loopback_only(tmp_path: Path) -> None:
    with DynamoDBLocal(db_path=tmp_path / "dynamodb") as service:
        assert_loopback_only(service)
