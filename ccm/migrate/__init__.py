"""`vipam migrate`: MetalLB and Cilium LB-IPAM objects to vipam objects, without moving an address.

Reading order: :mod:`.command` (the CLI), :mod:`.source` (files, stdin, or a live cluster),
:mod:`.convert` (dispatch by API group), :mod:`.metallb` with :mod:`.metallb_peer`,
:mod:`.cilium`, :mod:`.cilium_bgp` with :mod:`.cilium_bgp_v1` and :mod:`.cilium_bgp_v2` (one
converter per peer and API), :mod:`.checks` and :mod:`.services` (what only the whole output
shows), :mod:`.output` (the vipam objects and their YAML), :mod:`.report` (what was lost,
noted, or refused).

The package imports nothing at load time, so that the CLI can register the command without
loading the converters.
"""
