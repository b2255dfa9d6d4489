"""Which types skops may load for a model: the platform's own list per candidate family, plus the
types the declaration trusts by name (``code.trusted_types``). Never "trust everything": a fitted
model that needs anything else is refused, and the refusal names the type and where to declare it.
"""

from __future__ import annotations

from typing import Any

from modelops.config import ModelConfig
from modelops.training.search_spaces import SEARCH_SPACES, skops_trusted_types


class UntrustedTypes(ValueError):
    """A fitted model needs skops to load types neither the platform nor the declaration trusts."""


def platform_trusted_types() -> set[str]:
    """Every type the built-in families need, for both kinds of estimator (what the platform vouches for)."""
    return {
        name
        for candidate in SEARCH_SPACES
        for problem in ("binary_classification", "regression")
        for name in skops_trusted_types(candidate, problem)
    }


def allowed_types(model: ModelConfig) -> set[str]:
    return platform_trusted_types() | set(model.code.trusted_types if model.code else ())


def refuse_untrusted(model: ModelConfig, needed: set[str] | list[str], what: str) -> list[str]:
    """``needed`` if every type is allowed for ``model``; else :class:`UntrustedTypes` naming the rest."""
    missing = sorted(set(needed) - allowed_types(model))
    if missing:
        unnamed = [name for name in missing if "<" in name]  # '<lambda>', '<locals>': no name to load by
        advice = (
            f"{unnamed} have no importable name (a lambda, or a function defined inside another): define "
            f"them at the top level of a module of code.package and list them under code.trusted_types"
            if unnamed
            else "if they are the model's own classes or functions, list them under code.trusted_types"
        )
        raise UntrustedTypes(
            f"model '{model.name}': {what} needs skops to load {missing}, which neither the platform nor "
            f"the declaration trusts; {advice} in {model.name}.yaml"
        )
    return sorted(set(needed))


def trusted_types_for(model: ModelConfig, candidate: str, fitted: Any) -> list[str]:
    """The exact allow-list to log ``fitted`` with (MLflow dumps it and loads it back with this).

    A built-in family without the model's own code: the family's table (exact, and tested). Any
    other: what skops finds in the fitted object, if every type of it is allowed."""
    if model.code is None and candidate in SEARCH_SPACES:
        return skops_trusted_types(candidate, model.problem_type)
    import skops.io

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(fitted))
    return refuse_untrusted(model, needed, f"candidate '{candidate}'")
