#!/usr/bin/env python3
"""Extract the component schemas of Stripe's published OpenAPI document for stripe-fake's
conformance test (crates/stripe-fake/tests/openapi.rs).

Usage: scripts/openapi-schemas.py SPEC3.yaml|SPEC3.json SOURCE-DESCRIPTION > out.json
       gzip -9 out.json

The committed file came from github.com/stripe/openapi, openapi/spec3.yaml at commit
96f3704c1cecde3e637d17bc3a758e716ec24bc1 (API version 2023-08-16), the newest full spec that
repository's public snapshot holds. Descriptions and other documentation-only keys are dropped.
"""
import json
import sys

DOCS_ONLY = {"description", "title", "x-stripeBypassValidation", "x-expandableFields", "x-stripeMostCommon"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DOCS_ONLY}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    path, source = sys.argv[1], sys.argv[2]
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            import yaml  # PyYAML, only needed for the YAML form

            spec = yaml.safe_load(f)
        else:
            spec = json.load(f)
    out = {
        "info": {"version": spec["info"]["version"], "source": source},
        "components": {"schemas": strip(spec["components"]["schemas"])},
    }
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main()
