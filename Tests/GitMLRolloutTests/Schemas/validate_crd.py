#!/usr/bin/env python3
"""Validate Kubernetes custom resources against a CRD openAPIV3Schema.

Usage:
    validate_crd.py [options] <schema.json|crd.yaml> <document.yaml|document.json>

<schema> is either the extracted `openAPIV3Schema` of one CRD version as JSON
(e.g. argo-rollouts-rollout.schema.json next to this script) or a whole
CustomResourceDefinition (YAML or JSON); for a CRD the version named by the
document's apiVersion is used (falling back to the storage version).

<document> may hold several YAML documents (and `kind: List` objects). Only
documents of the expected kind are validated. The kind comes from, in order:
  1. --kind KIND
  2. spec.names.kind when <schema> is a CRD
  3. the schema file name: the last '-'-separated word before `.schema.json`
     (argo-rollouts-rollout.schema.json -> "rollout", compared case-insensitively)
     -- used only if some document has that kind; otherwise a single-document
     file is validated as is.

Strict by default: every object schema that lists `properties` (and has no
`additionalProperties` and no `x-kubernetes-preserve-unknown-fields: true`) gets
`additionalProperties: false`, which mimics the API server's strict field
validation (kubectl --validate=strict) instead of silent pruning. Fields under
x-kubernetes-preserve-unknown-fields and bare `type: object` nodes stay open.
In strict mode the root `metadata` (a bare `type: object` in every CRD) is
checked against the fixed list of ObjectMeta field names, and labels /
annotations must map to strings. --lenient validates the schema exactly as
published (unknown fields accepted, metadata unchecked).

Formats int32 / int64 (range) and date-time (RFC 3339) are checked; other
formats are ignored. Timestamps in YAML are kept as strings (as Kubernetes does).

Exit status: 0 = all selected documents valid; 1 = one line per error on stdout
(or a line explaining why nothing could be validated); 2 = bad command line.

Requires: PyYAML, jsonschema (>= 3.2; tested with 4.26.0 and PyYAML 6.0.3).
"""
import argparse
import copy
import json
import os
import re
import sys

try:
    import yaml
    import jsonschema
except ImportError as exc:  # pragma: no cover
    print("validate_crd.py: missing dependency: %s (pip install pyyaml jsonschema)" % exc)
    sys.exit(1)

COMBINATORS = ("anyOf", "allOf", "oneOf")
MAX_MSG = 300


# ---------------------------------------------------------------- loading
class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as plain strings."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)


def load_documents(path):
    with open(path, "r", encoding="utf-8") as fh:
        text = fh.read()
    if path.endswith(".json"):
        data = json.loads(text)
        docs = data if isinstance(data, list) else [data]
    else:
        docs = list(yaml.load_all(text, Loader=_Loader))
    out = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(d for d in doc["items"] if d is not None)
        else:
            out.append(doc)
    return out


def version_of(api_version):
    if isinstance(api_version, str) and api_version:
        return api_version.rsplit("/", 1)[-1]
    return None


def schema_from_crd(crd, wanted_version):
    versions = crd.get("spec", {}).get("versions") or []
    chosen = None
    for v in versions:
        if v.get("name") == wanted_version:
            chosen = v
    if chosen is None:
        chosen = next((v for v in versions if v.get("storage")), versions[0] if versions else None)
    if chosen is None or "schema" not in chosen:
        raise ValueError("CRD has no versions with a schema")
    return chosen["schema"]["openAPIV3Schema"]


def kind_hint_from_filename(path):
    base = os.path.basename(path)
    for suffix in (".schema.json", ".json"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rsplit("-", 1)[-1].lower() or None


# ---------------------------------------------------------------- strict mode
OBJECT_META_FIELDS = (
    "annotations", "creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp",
    "finalizers", "generateName", "generation", "labels", "managedFields", "name",
    "namespace", "ownerReferences", "resourceVersion", "selfLink", "uid",
)


def object_meta_schema():
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    props = {name: {} for name in OBJECT_META_FIELDS}
    props.update({
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": string_map,
        "annotations": string_map,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "generation": {"type": "integer", "format": "int64"},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
    })
    return {"type": "object", "properties": props, "additionalProperties": False}


def make_strict(node, in_combinator=False):
    """Return a copy of `node` where unknown fields are rejected (see module doc)."""
    if isinstance(node, list):
        return [make_strict(x, in_combinator) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: make_strict(v, in_combinator) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, (dict, list)):
            out[key] = make_strict(value, in_combinator)
        elif key in COMBINATORS and isinstance(value, list):
            out[key] = [make_strict(x, True) for x in value]
        elif key == "not" and isinstance(value, dict):
            out[key] = make_strict(value, True)
        else:
            out[key] = copy.deepcopy(value)
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields") and not in_combinator):
        out["additionalProperties"] = False
    return out


def strict_root(schema):
    strict = make_strict(schema)
    meta = strict.get("properties", {}).get("metadata")
    if isinstance(meta, dict) and "properties" not in meta and not meta.get("x-kubernetes-preserve-unknown-fields"):
        strict["properties"]["metadata"] = object_meta_schema()
    return strict


# ---------------------------------------------------------------- formats
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def format_checker():
    checker = jsonschema.FormatChecker(formats=())

    def int_range(bits):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def check(value):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return True  # format only constrains integers
            if isinstance(value, float) and not value.is_integer():
                return True  # the `type: integer` check reports this one
            return lo <= value <= hi
        return check

    checker.checks("int32")(int_range(32))
    checker.checks("int64")(int_range(64))

    @checker.checks("date-time")
    def _date_time(value):
        return not isinstance(value, str) or bool(_RFC3339.match(value))

    return checker


# ---------------------------------------------------------------- reporting
def json_path(parts):
    out = ""
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ".%s" % p
    return out or "."


def one_line(msg):
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= MAX_MSG else msg[: MAX_MSG - 3] + "..."


def describe(doc, index):
    kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
    name = "?"
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        name = doc["metadata"].get("name") or doc["metadata"].get("generateName") or "?"
    return "doc[%d] %s/%s" % (index, kind, name)


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("schema", help="openAPIV3Schema JSON file, or a CRD YAML/JSON")
    ap.add_argument("document", help="YAML (multi-document allowed) or JSON resource file")
    ap.add_argument("--kind", help="validate only documents of this kind (e.g. Rollout)")
    ap.add_argument("--lenient", action="store_true",
                    help="do not reject unknown fields (schema exactly as published)")
    ap.add_argument("--draft", choices=("7", "2020-12"), default="7",
                    help="JSON Schema draft used to interpret the schema (default 7)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="list each validated document on stderr")
    args = ap.parse_args(argv)

    try:
        schema_docs = load_documents(args.schema)
        docs = load_documents(args.document)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print("error: %s" % one_line(exc))
        return 1
    if len(schema_docs) != 1 or not isinstance(schema_docs[0], dict):
        print("error: %s: expected exactly one schema or CRD object" % args.schema)
        return 1
    schema_src = schema_docs[0]
    crd = schema_src if schema_src.get("kind") == "CustomResourceDefinition" else None

    wanted = args.kind or (crd and crd.get("spec", {}).get("names", {}).get("kind"))
    if wanted:
        selected = [(i, d) for i, d in enumerate(docs) if isinstance(d, dict) and d.get("kind") == wanted]
        if not selected:
            print("error: %s: no document with kind %s" % (args.document, wanted))
            return 1
    else:
        hint = kind_hint_from_filename(args.schema)
        selected = [(i, d) for i, d in enumerate(docs)
                    if isinstance(d, dict) and str(d.get("kind", "")).lower() == hint]
        if not selected:
            if len(docs) == 1:
                selected = [(0, docs[0])]
                if args.verbose or (isinstance(docs[0], dict) and docs[0].get("kind")):
                    print("note: schema file name suggests kind '%s' but the document has kind %r; "
                          "validating it anyway (use --kind to be explicit)"
                          % (hint, docs[0].get("kind") if isinstance(docs[0], dict) else None), file=sys.stderr)
            else:
                print("error: %s: cannot tell which document to validate; pass --kind" % args.document)
                return 1

    validator_cls = jsonschema.Draft7Validator
    if args.draft == "2020-12":
        validator_cls = getattr(jsonschema, "Draft202012Validator", None)
        if validator_cls is None:
            print("error: this jsonschema version has no Draft202012Validator (need >= 4.0)")
            return 1
    checker = format_checker()
    validators = {}

    errors = []
    for index, doc in selected:
        base = schema_from_crd(crd, version_of(doc.get("apiVersion") if isinstance(doc, dict) else None)) \
            if crd else schema_src
        key = id(base)
        if key not in validators:
            schema = base if args.lenient else strict_root(base)
            validators[key] = validator_cls(schema, format_checker=checker)
        where = describe(doc, index)
        if args.verbose:
            print("validating %s (%s)" % (where, "lenient" if args.lenient else "strict"), file=sys.stderr)
        for err in sorted(validators[key].iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
            errors.append("%s %s: %s" % (where, json_path(err.absolute_path), one_line(err.message)))

    for line in errors:
        print(line)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
