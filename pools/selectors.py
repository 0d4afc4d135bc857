"""Kubernetes label selectors, parsed from the camelCase dict a custom resource carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _CamelModel(BaseModel):
    """Accept the CRD's camelCase and Python names; refuse unknown fields so typos are errors,
    and values of the wrong JSON type (strict: ``"yes"`` is not a boolean, ``"5"`` not an
    integer), as the API server does."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True, strict=True)


class LabelSelectorRequirement(_CamelModel):
    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        # Same rule as the API server: In/NotIn need values, Exists/DoesNotExist take none.
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present


class LabelSelector(_CamelModel):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, alias="matchExpressions"
    )

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: all labels and expressions must hold; empty matches all."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)
