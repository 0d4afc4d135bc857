"""Read RBAC grants, from the rendered Roles/ClusterRoles and from config/rbac/permissions.yaml,
as one flat set of (service account, scope, API group, resource, verb).

Flat tuples make "exactly these, nothing more" a set comparison, and are what a test of the
code's API calls can compare its calls against.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

from tests.unit.manifests.render import CONFIG, Manifest, of_kind


class Grant(NamedTuple):
    service_account: str
    scope: str  # "cluster" for a ClusterRole, "namespace" for a Role in the SA's namespace
    api_group: str
    resource: str
    verb: str


PERMISSIONS = CONFIG / "rbac" / "permissions.yaml"


def listed_grants(path: Path = PERMISSIONS) -> set[Grant]:
    """The grants permissions.yaml declares."""
    rules = yaml.safe_load(path.read_text())["rules"]
    return {
        Grant(rule["serviceAccount"], rule["scope"], rule["apiGroup"], rule["resource"], verb)
        for rule in rules
        for verb in rule["verbs"]
    }


def rendered_grants(objects: tuple[Manifest, ...]) -> set[Grant]:
    """The grants the rendered bindings give to ServiceAccounts in their own namespace."""
    roles = {("ClusterRole", "", r["metadata"]["name"]): r for r in of_kind(objects, "ClusterRole")}
    roles |= {
        ("Role", r["metadata"]["namespace"], r["metadata"]["name"]): r
        for r in of_kind(objects, "Role")
    }
    grants = set()
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        namespace = binding["metadata"].get("namespace", "")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], "" if ref["kind"] == "ClusterRole" else namespace, ref["name"])]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", subject
            if binding["kind"] == "RoleBinding":
                assert subject["namespace"] == namespace, "a Role reaches only its own namespace"
            scope = "cluster" if binding["kind"] == "ClusterRoleBinding" else "namespace"
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            grants.add(Grant(subject["name"], scope, group, resource, verb))
    return grants
