#!/usr/bin/env python3
"""Validates every manifest in deploy/istio and deploy/envoy-gateway against
the vendored CRD schemas (deploy/schemas), the way the API server would
with kubectl's strict field validation:

- each document's kind must exist in at least one schema set of its
  project, and it is checked against every set that serves that kind and
  apiVersion (Istio 1.29, 1.30, 1.31; Envoy Gateway 1.9);
- unknown fields are errors, except under x-kubernetes-preserve-unknown-fields
  (pluginConfig, config);
- ${VAR} placeholders are filled as a user would with envsubst: REGISTRY
  with an example registry, <FILTER>_SHA256 from dist/oci/digests.env
  (`make oci`); any placeholder left is an error.

With `--istio FILE...` it checks those files (the output of
`envoy-faas import --target istio`) against the Istio schemas instead.

Not evaluated: x-kubernetes-validations (CEL rules), which need an API server.
"""

import glob
import json
import os
import re
import sys

import jsonschema
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PROJECTS = {
    "deploy/istio": ["istio-1.29", "istio-1.30", "istio-1.31"],
    "deploy/envoy-gateway": ["envoy-gateway-1.9"],
}
EXAMPLE_REGISTRY = "registry.example.com/envoy-faas"


def strict(schema):
    """OpenAPI v3 (Kubernetes flavour) to JSON Schema with strict fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        if "properties" not in schema:
            out.pop("type", None)  # any value, as the API server keeps it
        return out
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def load_schemas(label):
    schemas = {}
    for path in glob.glob(os.path.join(ROOT, "deploy", "schemas", label, "*.json")):
        with open(path) as f:
            crd = json.load(f)
        for version, schema in crd["versions"].items():
            api_version = f"{crd['group']}/{version}"
            schema = strict(schema)
            # The API server's own fields: metadata is checked for a name below.
            schema["properties"]["metadata"] = {"type": "object"}
            schema["properties"]["apiVersion"] = {"const": api_version}
            schema["properties"]["kind"] = {"const": crd["kind"]}
            schemas[(api_version, crd["kind"])] = schema
    return schemas


def placeholders():
    values = {"REGISTRY": EXAMPLE_REGISTRY}
    digests = os.path.join(ROOT, "dist", "oci", "digests.env")
    if not os.path.exists(digests):
        sys.exit("dist/oci/digests.env is missing: run `make oci` first")
    with open(digests) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key:
                values[key] = value
    return values


def substitute(text, values, path):
    def fill(m):
        if m.group(1) not in values:
            sys.exit(f"{path}: no value for ${{{m.group(1)}}}")
        return values[m.group(1)]
    return re.sub(r"\$\{([A-Z0-9_]+)\}", fill, text)


def self_test():
    """The checker must catch an unknown field, a wrong enum and a wrong type."""
    schema = load_schemas("istio-1.30")[("extensions.istio.io/v1alpha1", "WasmPlugin")]
    good = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "metadata": {"name": "x"},
            "spec": {"url": "oci://r/x:1", "phase": "AUTHN", "pluginConfig": {"any": {"thing": 1}}}}
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors(good)), list(validator.iter_errors(good))
    for bad in ({"urll": "oci://r/x:1"}, {"url": "oci://r/x:1", "phase": "LATE"},
                {"url": "oci://r/x:1", "priority": "high"}):
        doc = dict(good, spec=bad)
        assert list(validator.iter_errors(doc)), f"not caught: {bad}"


def main():
    self_test()
    values = placeholders()
    failures, checked = [], 0
    # `--istio FILE...`: those files (envoy-faas import --target istio
    # output) against the Istio schemas, instead of deploy/.
    args = sys.argv[1:]
    if args[:1] == ["--istio"]:
        projects = {None: PROJECTS["deploy/istio"]}
        chosen = [os.path.abspath(a) for a in args[1:]]
        if not chosen:
            sys.exit("--istio needs files")
    else:
        projects, chosen = PROJECTS, None
    for directory, labels in projects.items():
        sets = {label: load_schemas(label) for label in labels}
        files = chosen or sorted(glob.glob(os.path.join(ROOT, directory, "*.yaml")))
        if not files:
            failures.append(f"{directory}: no manifests")
        for path in files:
            rel = os.path.relpath(path, ROOT)
            with open(path) as f:
                text = substitute(f.read(), values, rel)
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                key = (doc.get("apiVersion"), doc.get("kind"))
                name = f"{rel}: {key[1]} {doc.get('metadata', {}).get('name')}"
                if not doc.get("metadata", {}).get("name"):
                    failures.append(f"{name}: metadata.name is required")
                matching = [(label, s[key]) for label, s in sets.items() if key in s]
                if not matching:
                    failures.append(f"{name}: {key[0]} {key[1]} is in none of {labels}")
                    continue
                for label, schema in matching:
                    checked += 1
                    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc),
                                    key=lambda e: list(e.absolute_path))
                    for e in errors:
                        where = ".".join(str(p) for p in e.absolute_path) or "(document)"
                        failures.append(f"{name} [{label}]: {where}: {e.message}")
                print(f"ok  {name}  [{', '.join(label for label, _ in matching)}]")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"{checked} schema checks passed")


if __name__ == "__main__":
    main()
