"""The canonical data model: JSON Schemas shipped with Syncline for the objects integrations move between
systems — customer, product, quote, order, invoice, payment, shipment and subscription — so a flow can
go vendor → canonical → vendor.

A project refers to one as `canonical:<name>` wherever a schema path goes (a Mapping's `input_schema`
and `output_schema`, a trigger's schema): `input_schema: canonical:order`. Amounts are exact decimals in
the document's `currency` with as many decimals as the currency has (JPY 0, USD 2, KWD 3); lines carry
their discount and tax lines; `totals` are in the document's currency and `base` holds the totals in
the company's base currency with the exchange rate (multi-currency). See docs/canonical.md.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "canonical:"
FOLDER = Path(__file__).resolve().parent


def names() -> list[str]:
    """The shipped canonical schemas."""
    return sorted(path.stem for path in FOLDER.glob("*.json"))


def is_reference(text: str) -> bool:
    return text.startswith(PREFIX)


def schema_path(reference: str) -> Path:
    """The file of `canonical:<name>`; a path that does not exist when there is no such schema (the
    caller reports it as a missing schema, naming the known ones)."""
    name = reference[len(PREFIX) :].strip()
    if name not in names():
        return FOLDER / f"unknown-{name.replace('/', '_')}.json"
    return FOLDER / f"{name}.json"
