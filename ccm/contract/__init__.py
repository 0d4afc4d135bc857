"""The API contract both processes share: the names users see, the shapes we read, the rules.

`names` holds every annotation, finalizer, Lease name, Event reason and the class; `views` the
typed shapes of the objects we read (Service, Lease, IPPool, EndpointSlice, Node) and the
rules several places need (is this Service ours, which addresses does it show); `models` the
pydantic models of every vipam kind, used by the controller, the speaker and `vipam check`.
It imports nothing from the controller or the speaker, so neither needs the other.
"""
