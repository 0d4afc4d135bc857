"""vipam's pure IPAM core: pool specs, the allocator and external IPAM backends.

Nothing in this package talks to Kubernetes or keeps global state; the controller in `ccm`
feeds it Services and pool specs and writes its answers back.
"""
