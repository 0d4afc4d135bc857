"""The speaker's network layer: who announces an address, and how it reaches the network.

``election`` decides which node owns an address (rendezvous hashing, no per-Service Lease);
``l2`` makes an owned address reachable on a shared segment (address on the interface plus
gratuitous ARP / unsolicited neighbour advertisements); ``bgp`` announces /32 and /128 routes
to routers through a supervised ExaBGP process. The Kubernetes side (Leases, Services,
EndpointSlices, Events) wires these together elsewhere.
"""
