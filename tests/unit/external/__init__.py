"""Tests of the external IPAM backends that need no outside service."""
