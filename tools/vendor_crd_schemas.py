#!/usr/bin/env python3
"""Extracts the OpenAPI schemas of the CRDs our manifests use into
deploy/schemas/<label>/<Kind>.json (descriptions dropped, validation kept).

Used once per upstream release, from the CRD files those projects publish:
  vendor_crd_schemas.py istio-1.30.3 crd-all.gen.yaml WasmPlugin EnvoyFilter ...
  vendor_crd_schemas.py envoy-gateway-v1.9.0 gateway.envoyproxy.io_*.yaml EnvoyExtensionPolicy ...
The schemas are Apache-2.0 (deploy/schemas/LICENSE); SOURCE.md records where
each set came from.
"""

import json
import os
import sys

import yaml


def strip_descriptions(node):
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main():
    label, *rest = sys.argv[1:]
    files = [a for a in rest if a.endswith((".yaml", ".yml"))]
    kinds = [a for a in rest if a not in files]
    out_dir = os.path.join(os.path.dirname(__file__), "..", "deploy", "schemas", label)
    os.makedirs(out_dir, exist_ok=True)
    found = set()
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                kind = doc["spec"]["names"]["kind"]
                if kind not in kinds:
                    continue
                versions = {
                    v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"])
                    for v in doc["spec"]["versions"]
                    if v.get("served", True)
                }
                out = {"group": doc["spec"]["group"], "kind": kind, "versions": versions}
                with open(os.path.join(out_dir, kind + ".json"), "w") as f:
                    json.dump(out, f, sort_keys=True, separators=(",", ":"))
                found.add(kind)
    missing = set(kinds) - found
    if missing:
        sys.exit(f"{label}: no CRD for {sorted(missing)}")


if __name__ == "__main__":
    main()
