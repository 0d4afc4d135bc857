"""Services as the old controller left them, checked against the migrated pools before the
switch-over: whatever vipam would not restore quietly is reported."""

from __future__ import annotations

from tests.unit.migrate.helpers import lost, metallb, migrate, service

POOL = metallb("IPAddressPool", "lan", {"addresses": ["192.0.2.0/26"]})


def test_services_inside_the_pools_and_sharing_properly_pass() -> None:
    key = {"metallb.io/allow-shared-ip": "dns"}
    out = migrate(POOL,
                  service("dns-tcp", ["192.0.2.53"], annotations=key, ports=[53]),
                  service("dns-udp", ["192.0.2.53"], annotations=key, ports=[5353]),
                  service("web", ["192.0.2.2"], lb_class="vipam.io/vipam"),
                  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "internal"},
                   "spec": {"type": "ClusterIP"}})
    assert lost(out) == []


def test_an_address_outside_every_migrated_pool_is_reported() -> None:
    out = migrate(POOL, service("stray", ["198.51.100.9"]))
    assert lost(out) == [
        "Service/default/stray: status.loadBalancer.ingress[0].ip: 198.51.100.9 is in no migrated "
        "pool: vipam keeps it on the Service but reports IPConflict, and cannot give it out again "
        "once released"
    ]


def test_a_foreign_load_balancer_class_is_reported() -> None:
    out = migrate(POOL, service("l2", ["192.0.2.9"], lb_class="io.cilium/l2-announcer"))
    assert len(lost(out)) == 1
    assert lost(out)[0].startswith("Service/default/l2: spec.loadBalancerClass: "
                                   "'io.cilium/l2-announcer': vipam serves only Services")


def test_old_metallb_annotations_are_reported() -> None:
    out = migrate(POOL, service("old", ["192.0.2.3"], annotations={
        "metallb.universe.tf/address-pool": "lan",
        "metallb.universe.tf/loadBalancerIPs": "192.0.2.3",
        "metallb.io/allow-shared-ip": "k", "metallb.universe.tf/allow-shared-ip": "k",
    }))
    assert lost(out) == [
        "Service/default/old: metadata.annotations[metallb.universe.tf/address-pool]: vipam reads "
        "metallb.io/address-pool only: add it with the same value before switching",
        "Service/default/old: metadata.annotations[metallb.universe.tf/loadBalancerIPs]: vipam "
        "reads metallb.io/loadBalancerIPs only: add it with the same value before switching",
    ]


def test_shared_addresses_without_a_common_key_are_reported() -> None:
    out = migrate(POOL, service("a", ["192.0.2.5"], ports=[80],
                                annotations={"lbipam.cilium.io/sharing-key": "x"}),
                  service("b", ["192.0.2.5"], ports=[443]))
    assert lost(out) == [
        "Service/default/b: metadata.annotations: Service/default/a, Service/default/b all show "
        "192.0.2.5 but do not share one sharing key vipam reads (vipam.io/sharing-key, "
        "lbipam.cilium.io/sharing-key, metallb.io/allow-shared-ip): vipam keeps the oldest and "
        "reports IPConflict on the others"
    ]


def test_shared_addresses_with_overlapping_ports_are_reported() -> None:
    key = {"vipam.io/sharing-key": "k"}
    out = migrate(POOL, service("a", ["192.0.2.5"], annotations=key, ports=[80]),
                  service("b", ["192.0.2.5"], annotations=key, ports=[80, 81]))
    assert lost(out) == ["Service/default/b: spec.ports: shares 192.0.2.5 with ports another "
                         "holder uses ([('TCP', 80)]): vipam reports IPConflict on it"]
