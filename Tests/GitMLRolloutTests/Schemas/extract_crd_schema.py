#!/usr/bin/env python3
"""Print the openAPIV3Schema of one served CRD version as JSON (sorted keys, indent 2).

Usage: extract_crd_schema.py <crd.yaml | -> <version>     e.g.  - v1alpha1
The schema content is copied unchanged; only the serialisation differs (YAML -> JSON).
Requires PyYAML.
"""
import json
import sys

import yaml

crd_path, version = sys.argv[1], sys.argv[2]
text = sys.stdin.read() if crd_path == "-" else open(crd_path, encoding="utf-8").read()
docs = [d for d in yaml.safe_load_all(text) if d]
crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
ver = next(v for v in crd["spec"]["versions"] if v["name"] == version)
assert ver.get("served", False), "%s is not served" % version
json.dump(ver["schema"]["openAPIV3Schema"], sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
sys.stdout.write("\n")
