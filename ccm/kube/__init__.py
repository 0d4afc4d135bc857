"""The client layer: the only code in vipam that sends requests to the Kubernetes API.

`resources` names what we talk to, `client` sends single requests (raw JSON dicts, no generated
models), `informer` keeps a watched cache, `events` records Events and `leader` holds a Lease.
Everything above this layer works on plain dicts and never builds a URL itself.
"""
