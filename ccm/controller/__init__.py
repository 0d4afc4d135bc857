"""The controller: one level-triggered sync per Service, driven by informers and a work queue.

Allocation path: `manager.Controller` runs informers and the leader elector; a change enqueues
the Service's key (`queue.WorkQueue`); a worker calls `sync.ServiceSync.sync(key)`, which reads
the Service from the cache, turns it into a `pools.allocator.ServiceRequest`
(`service_view.parse_service`, on the contract's rules in `ccm.contract.views`), asks the
allocator, and writes back what differs from what `desired` says the Service must look like.
"""
