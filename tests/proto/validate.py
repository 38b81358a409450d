#!/usr/bin/env python3
"""Validates control-protocol messages against docs/formats/protocol.schema.json.

usage: validate.py SCHEMA [FILE]
Reads JSON lines {"def": "<name in $defs>", "message": {...}} from FILE (default stdin)
and validates each message against that definition (JSON Schema 2020-12, python3-jsonschema).
Exits 1 naming every message that does not validate, 2 when there was nothing to check.
"""
import json
import sys

import jsonschema


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    source = open(sys.argv[2], encoding="utf-8") if len(sys.argv) == 3 else sys.stdin
    jsonschema.Draft202012Validator.check_schema(schema)
    checked, bad = 0, 0
    for n, line in enumerate(source, 1):
        if not line.strip():
            continue
        item = json.loads(line)
        name = item["def"]
        if name not in schema["$defs"]:
            print(f"line {n}: no definition {name!r} in the schema", file=sys.stderr)
            bad += 1
            continue
        one = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
        errors = list(jsonschema.Draft202012Validator(one).iter_errors(item["message"]))
        checked += 1
        if errors:
            bad += 1
            print(f"line {n}: {name} does not validate: {json.dumps(item['message'])}", file=sys.stderr)
            for e in errors[:5]:
                print(f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}", file=sys.stderr)
    if checked == 0:
        print("validate.py: no message to check", file=sys.stderr)
        return 2
    print(f"validate.py: {checked - bad} of {checked} messages valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
