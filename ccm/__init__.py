"""vipam's controller manager and speaker: everything that talks to Kubernetes or the network."""

__version__ = "0.1.0"
