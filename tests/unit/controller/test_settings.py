"""Controller settings from flags and from VIPAM_* environment variables (README)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccm.controller.settings import ControllerSettings


def test_compat_from_the_environment_is_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIPAM_COMPAT", "metallb, cilium")
    assert ControllerSettings().compat == frozenset({"metallb", "cilium"})


def test_compat_from_a_flag_value_and_unknown_projects_are_refused() -> None:
    assert ControllerSettings(compat="kube-vip").compat == frozenset({"kube-vip"})
    with pytest.raises(ValidationError, match="unknown compat project"):
        ControllerSettings(compat="metallb,nope")
