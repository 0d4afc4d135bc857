"""Suite-wide fixtures. Prerequisite checks live in tests/prereq.py."""

pytest_plugins = ["tests.realkube"]
