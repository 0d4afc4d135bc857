"""RBAC: least privilege, as enumerated in config/rbac/permissions.yaml and in the issue."""

from __future__ import annotations

import yaml

from tests.unit.manifests.rbac import PERMISSIONS, Grant, listed_grants, rendered_grants
from tests.unit.manifests.render import NAMESPACE, Manifest, named, of_kind

ROLE_KINDS = ("ClusterRole", "Role")
READ = {"get", "list", "watch"}


def test_no_wildcards_anywhere(install: tuple[Manifest, ...]) -> None:
    for kind in ROLE_KINDS:
        for role in of_kind(install, kind):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule.get(field, []), (
                        f"{kind}/{role['metadata']['name']}: {field}"
                    )
                assert "resourceNames" not in rule or rule["resourceNames"]
                assert "nonResourceURLs" not in rule
            assert "aggregationRule" not in role


def test_two_service_accounts_and_each_binding_names_one(install: tuple[Manifest, ...]) -> None:
    accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"])
        for sa in of_kind(install, "ServiceAccount")
    }
    assert accounts == {(NAMESPACE, "vipam-controller"), (NAMESPACE, "vipam-speaker")}
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for binding in of_kind(install, kind):
            (subject,) = binding["subjects"]
            assert (subject["namespace"], subject["name"]) in accounts
            assert binding["roleRef"]["name"] == subject["name"], "one role per identity"


def test_rendered_roles_grant_exactly_the_listed_permissions(install: tuple[Manifest, ...]) -> None:
    rendered = rendered_grants(install)
    listed = listed_grants()
    assert rendered - listed == set(), "granted but not listed in permissions.yaml"
    assert listed - rendered == set(), "listed in permissions.yaml but not granted"


def test_every_listed_permission_says_why() -> None:
    rules = yaml.safe_load(PERMISSIONS.read_text())["rules"]
    keys = [(r["serviceAccount"], r["scope"], r["apiGroup"], r["resource"]) for r in rules]
    assert len(keys) == len(set(keys)), "one entry per (account, scope, group, resource)"
    for rule in rules:
        assert set(rule) == {"serviceAccount", "scope", "apiGroup", "resource", "verbs", "why"}
        assert rule["scope"] in {"cluster", "namespace"}
        assert len(rule["why"]) > 20, rule


def grants_of(account: str) -> set[tuple[str, str, str, str]]:
    return {
        (g.scope, g.api_group, g.resource, g.verb)
        for g in listed_grants()
        if g.service_account == account
    }


# Which grants each identity holds is decided by the code's own API calls:
# tests/integration/rbac/test_rbac_coverage.py records every call the controller and the
# speaker make and checks them against permissions.yaml in both directions.


def test_secrets_are_readable_only_in_the_own_namespace(install: tuple[Manifest, ...]) -> None:
    """Pools and peers are cluster-scoped and name a Secret: a cluster-wide grant would let
    whoever writes an IPPool have any Secret sent to a URL of their choosing."""
    secret_grants = {g for g in rendered_grants(install) if g.resource == "secrets"}
    assert secret_grants == {
        Grant("vipam-controller", "namespace", "", "secrets", "get"),
        Grant("vipam-speaker", "namespace", "", "secrets", "get"),
    }
    for account in ("vipam-controller", "vipam-speaker"):
        assert named(install, "Role", account)["metadata"]["namespace"] == NAMESPACE


def test_nobody_deletes_or_writes_pools(install: tuple[Manifest, ...]) -> None:
    for grant in rendered_grants(install):
        assert grant.verb not in {"delete", "deletecollection", "escalate", "bind", "impersonate"}
        if grant.api_group == "vipam.io" and "/" not in grant.resource:
            assert grant.verb in READ, grant
