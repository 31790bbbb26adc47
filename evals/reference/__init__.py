"""The reference generated from the models: JSON Schemas and the docs' generated regions."""

from evals.reference._generate import (
    REGIONS,
    contract_reference,
    generated,
    reference_pages,
    rule_kinds_table,
    schemas,
)

__all__ = [
    "REGIONS",
    "contract_reference",
    "generated",
    "reference_pages",
    "rule_kinds_table",
    "schemas",
]
