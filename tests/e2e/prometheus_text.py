#!/usr/bin/python3
"""Reads Prometheus text exposition on stdin with the Prometheus project's own parser
(python3-prometheus-client) and prints every sample as JSON: {"name{label=value,...}": value}.
Exits 1 with the parser's complaint when the text does not parse, 77 when the parser is missing."""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("python3-prometheus-client is not installed", file=sys.stderr)
    sys.exit(77)

text = sys.stdin.read()
out = {}
types = {}
try:
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "role")
            key = sample.name + ("{" + labels + "}" if labels else "")
            if key in out:
                raise ValueError(f"sample {key} appears twice")
            out[key] = sample.value
except Exception as e:  # the parser raises ValueError and others on malformed text
    print(f"not Prometheus text: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"samples": out, "types": types}))
