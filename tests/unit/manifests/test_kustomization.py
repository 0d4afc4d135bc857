"""The install tree as a whole, and the samples tree beside it."""

from __future__ import annotations

from tests.unit.manifests.render import NAMESPACE, Manifest

CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"}
PART_OF = ("app.kubernetes.io/part-of", "vipam")


def test_install_has_crds_rbac_and_both_workloads(install: tuple[Manifest, ...]) -> None:
    kinds = sorted(obj["kind"] for obj in install)
    assert kinds == sorted(
        ["CustomResourceDefinition"] * 4
        + ["ServiceAccount"] * 2
        + ["ClusterRole"] * 2
        + ["ClusterRoleBinding"] * 2
        + ["Role"] * 2
        + ["RoleBinding"] * 2
        + ["Deployment", "DaemonSet"]
    )


def test_namespaced_objects_land_in_kube_system(install: tuple[Manifest, ...]) -> None:
    for obj in install:
        where = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert where is None, f"{obj['kind']}/{obj['metadata']['name']} is cluster-scoped"
        else:
            assert where == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def test_every_object_and_pod_is_labelled_part_of_vipam(install: tuple[Manifest, ...]) -> None:
    for obj in install:
        assert PART_OF in obj["metadata"].get("labels", {}).items(), obj["metadata"]["name"]
        if obj["kind"] in {"Deployment", "DaemonSet"}:
            assert PART_OF in obj["spec"]["template"]["metadata"]["labels"].items()
            # Selectors are immutable: the common label must not be added to them.
            assert PART_OF not in obj["spec"]["selector"]["matchLabels"].items()


def test_install_creates_no_pools_and_samples_no_controller(
    install: tuple[Manifest, ...], samples: tuple[Manifest, ...]
) -> None:
    assert not [obj for obj in install if obj["apiVersion"].startswith("vipam.io/")]
    sample_kinds = {obj["kind"] for obj in samples}
    assert sample_kinds.isdisjoint({"Deployment", "DaemonSet", "CustomResourceDefinition"})
    assert {"IPPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement", "Service"} <= sample_kinds


def test_names_are_unique(install: tuple[Manifest, ...], samples: tuple[Manifest, ...]) -> None:
    for objects in (install, samples):
        keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
        assert len(keys) == len(set(keys))
