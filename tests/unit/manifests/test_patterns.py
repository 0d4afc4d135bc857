"""Regular expressions in the CRDs: `pattern`s and the ones CEL rules pass to `matches()`.

The API server runs both with Go's regexp (RE2 syntax), these tests and cel-python with Python's
`re`; every expression must be RE2 and stay in the subset both read the same way, which RE2
itself checks here. The address fields have no pattern any more: CEL's IP library words their
errors (config/crd), and the pre-1.31 fallback's `matches()` is covered by test_crd_fallback.py.
"""

from __future__ import annotations

import re

import pytest

from tests.prereq import require
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import CONFIG, render, render_with_component
from tests.unit.manifests.walk import nodes

# matches('...') with a CEL single-quoted string (the only form the CRDs use)
MATCHES = re.compile(r"matches\('((?:[^'\\]|\\.)*)'\)")


def _all_regexes() -> list[tuple[str, str]]:
    """(where, regular expression) over config/crd and its pre-1.31 fallback."""
    found = []
    for tree in (render(CONFIG / "crd"), render_with_component(CONFIG / "crd",
                                                               CONFIG / "crd-pre-1.31")):
        crds = [obj for obj in tree if obj["kind"] == "CustomResourceDefinition"]
        for kind, root in crdschema.schemas_by_kind(crds).items():
            for path, node in nodes(root):
                if "pattern" in node:
                    found.append((f"{kind} {path} pattern", node["pattern"]))
                for rule in node.get("x-kubernetes-validations", []):
                    for literal in MATCHES.findall(rule["rule"]):
                        # a CEL string literal: \\ is one backslash
                        found.append((f"{kind} {path} rule", literal.replace("\\\\", "\\")))
    return found


def test_every_regular_expression_is_valid_re2(install: object) -> None:
    try:
        import re2
    except ImportError:
        re2 = None
    require(re2 is not None, "google-re2 is not installed (it comes with cel-python)")
    assert re2 is not None
    regexes = _all_regexes()
    assert len(regexes) >= 12
    assert any("matches" in where or "rule" in where for where, _ in regexes)
    for where, expression in regexes:
        try:
            re2.compile(expression)
        except Exception as error:  # re2 raises its own error type
            pytest.fail(f"{where}: {expression!r} is not RE2: {error}")
        re.compile(expression)


def test_the_address_fields_have_no_pattern_left(install: object) -> None:
    """The 900-character address expressions are gone: the rules say what is wrong instead."""
    for where, expression in _all_regexes():
        assert len(expression) < 120, f"{where}: {len(expression)} characters"
