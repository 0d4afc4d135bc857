"""The controller Deployment and the speaker DaemonSet: probes, identity, hardening."""

from __future__ import annotations

from typing import Any

from tests.unit.manifests.render import NAMESPACE, Manifest, named

IMAGE = "ghcr.io/vipam/vipam:0.1.0"
HEALTH_PORT = 8081


def pod(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Manifest) -> dict[str, Any]:
    (only,) = pod(workload)["containers"]
    result: dict[str, Any] = only
    return result


def downward_env(c: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"] if "valueFrom" in e
    }


def assert_probes_on_health_port(c: dict[str, Any]) -> None:
    assert {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def assert_resources(c: dict[str, Any]) -> None:
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind


def assert_hardened(c: dict[str, Any], workload: Manifest) -> None:
    security = c["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security.get("privileged", False) is False
    profile = security.get("seccompProfile") or pod(workload)["securityContext"]["seccompProfile"]
    assert profile == {"type": "RuntimeDefault"}
    # A read-only root needs somewhere writable for temporary files.
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod(workload)["volumes"])


def test_controller_deployment(install: tuple[Manifest, ...]) -> None:
    deployment = named(install, "Deployment", "vipam-controller")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    spec = pod(deployment)
    assert spec["serviceAccountName"] == "vipam-controller"
    c = container(deployment)
    assert (c["image"], c["args"]) == (IMAGE, ["controller"])
    assert downward_env(c) == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert_probes_on_health_port(c)
    assert_resources(c)
    assert_hardened(c, deployment)
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert "add" not in c["securityContext"]["capabilities"]
    assert not spec.get("hostNetwork", False)


def test_controller_replicas_prefer_different_nodes(install: tuple[Manifest, ...]) -> None:
    deployment = named(install, "Deployment", "vipam-controller")
    anti = pod(deployment)["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti, (
        "must not block a 1-node cluster"
    )
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    # The term must select this Deployment's own pods, or it spreads nothing.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_speaker_daemonset(install: tuple[Manifest, ...]) -> None:
    daemonset = named(install, "DaemonSet", "vipam-speaker")
    assert daemonset["metadata"]["namespace"] == NAMESPACE
    spec = pod(daemonset)
    assert spec["serviceAccountName"] == "vipam-speaker"
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet", "hostNetwork pods still need cluster DNS"
    c = container(daemonset)
    assert (c["image"], c["args"]) == (IMAGE, ["speaker"])
    assert downward_env(c)["NODE_NAME"] == "spec.nodeName"
    assert_probes_on_health_port(c)
    assert_resources(c)
    assert_hardened(c, daemonset)
    assert sorted(c["securityContext"]["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"]
    selector_labels = daemonset["spec"]["selector"]["matchLabels"]
    assert selector_labels.items() <= daemonset["spec"]["template"]["metadata"]["labels"].items()


def test_speaker_runs_on_control_plane_nodes(install: tuple[Manifest, ...]) -> None:
    tolerations = pod(named(install, "DaemonSet", "vipam-speaker"))["tolerations"]
    tolerated = {(t["key"], t["operator"], t.get("effect")) for t in tolerations}
    assert ("node-role.kubernetes.io/control-plane", "Exists", "NoSchedule") in tolerated


def test_controller_and_speaker_pods_do_not_select_each_other(
    install: tuple[Manifest, ...],
) -> None:
    deployment = named(install, "Deployment", "vipam-controller")
    daemonset = named(install, "DaemonSet", "vipam-speaker")
    d_selector = deployment["spec"]["selector"]["matchLabels"].items()
    s_selector = daemonset["spec"]["selector"]["matchLabels"].items()
    assert not d_selector <= daemonset["spec"]["template"]["metadata"]["labels"].items()
    assert not s_selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
