"""Who answers for each domain's assets: owners and tags shown in the UI (asset catalog filters,
the owner on every asset page). A new domain adds one entry; a model gets its domain's."""

from c360_assets.lib.models import Ownership


def _domain(name: str, *owners: str) -> Ownership:
    return Ownership(owners=owners, tags={"domain": name})


OWNERSHIP = {
    "ingest": _domain("ingest", "team:data-platform"),
    "usage": _domain("usage", "team:product-analytics"),
    "customers": _domain("customers", "team:revenue-operations"),
    "billing": _domain("billing", "team:finance-data"),
    "risk": _domain("risk", "team:risk"),
    "close": _domain("close", "team:finance-data"),
    "serving": _domain("serving", "team:data-platform"),
}


def ownership(domain: str) -> Ownership:
    """The domain's owners and tags (none for a domain not listed here)."""
    return OWNERSHIP.get(domain, Ownership())
