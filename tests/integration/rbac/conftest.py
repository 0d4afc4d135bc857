from tests.integration.controller.conftest import emu, kube, kubeconfig  # noqa: F401
