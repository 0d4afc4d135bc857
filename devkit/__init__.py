"""Development tooling: the Kubernetes API emulator, the playground and its network plumbing, the
manifest-apply helper and the reference IPAM server.

None of this ships: it lives outside `ccm` and `pools`, so the wheel and the image hold only the
product. It runs from a checkout (`./scripts/playground`, the tests, `bench/`).
"""
