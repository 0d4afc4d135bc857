"""The RBAC suite runs against a real kube-apiserver with the controller's and the speaker's
own ServiceAccount tokens; the server's audit log records what each identity asked for."""

from tests.integration.speaker.conftest import (  # noqa: F401
    emu,
    kube,
    kubeconfig,
    speaker_kubeconfig,
)
