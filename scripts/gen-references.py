#!/usr/bin/env python3
"""Write crates/stripe-catalog/references.json: for each property of the catalog's resources
that holds another resource's id, the objects Stripe's published OpenAPI spec says it can hold.

Source: the component schemas committed for stripe-fake's conformance test
(crates/stripe-fake/tests/data/openapi-schemas-2023-08-16.json.gz, see scripts/openapi-schemas.py),
read from their `x-expansionResources`. Only properties the catalog has are kept; object names
are Stripe's (`customer`, `deleted_customer`, `application`), whether or not a stream syncs them.

Usage: scripts/gen-references.py   (run from anywhere; rewrites the file in place)
"""
import gzip
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "crates/stripe-fake/tests/data/openapi-schemas-2023-08-16.json.gz"
CATALOG = ROOT / "crates/stripe-catalog/catalog.json"
OUT = ROOT / "crates/stripe-catalog/references.json"


def targets(prop: dict) -> list[str]:
    expansion = prop.get("x-expansionResources") or {}
    refs = expansion.get("oneOf") or []
    return [r["$ref"].rsplit("/", 1)[-1] for r in refs if "$ref" in r]


def main() -> None:
    with gzip.open(SPEC, "rt") as f:
        schemas = json.load(f)["components"]["schemas"]
    resources = json.loads(CATALOG.read_text())["resources"]
    out: dict[str, dict[str, list[str]]] = {}
    for resource in sorted(resources, key=lambda r: r["object"]):
        spec_props = (schemas.get(resource["object"]) or {}).get("properties") or {}
        found = {
            field: targets(spec_props[field])
            for field in sorted(resource["properties"])
            if field in spec_props and targets(spec_props[field])
        }
        if found:
            out[resource["object"]] = found
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {sum(len(v) for v in out.values())} properties of {len(out)} objects")


if __name__ == "__main__":
    main()
