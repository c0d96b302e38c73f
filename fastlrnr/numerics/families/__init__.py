"""The PDE families this code knows, by the name artifacts give them (``FAMILIES``)."""

from fastlrnr.numerics.families.allen_cahn import ALLEN_CAHN_FAMILY
from fastlrnr.numerics.families.burgers import BURGERS_FAMILY
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.family import PdeFamily

FAMILIES: dict[str, PdeFamily] = {f.name: f for f in (CDR_FAMILY, ALLEN_CAHN_FAMILY, BURGERS_FAMILY)}


def family_named(name: str) -> PdeFamily:
    """The family called ``name``; KeyError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown PDE family {name!r}; known: {sorted(FAMILIES)}") from None


__all__ = ["ALLEN_CAHN_FAMILY", "BURGERS_FAMILY", "CDR_FAMILY", "FAMILIES", "family_named"]
