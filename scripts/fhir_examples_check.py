#!/usr/bin/env python3
"""Holds what the server returned for the official R4 examples against two external
validators (ADR 0011): fhir.resources (R4 models) and the official R4 JSON schema.

usage: fhir_examples_check.py SCHEMA EXAMPLES_DIR READBACK_DIR...

For each backend's READBACK_DIR (written by the test
`the_official_examples_are_accepted_and_read_back_as_deposited`): every resource read back
must pass both validators wherever its original example does; the examples the server refused
(refused.tsv) are listed with the validators' verdict on the original. Exit 1 on any failure.
"""
import sys
from pathlib import Path

import fhir_validate as fv

SHARED = set("Patient AllergyIntolerance Condition Procedure MedicationRequest MedicationDispense "
             "MedicationStatement Encounter Appointment DocumentReference Immunization Observation "
             "DiagnosticReport ImagingStudy ServiceRequest".split())


def verdict(schema, path, only=None):
    data = fv.load_strict(path)
    rt = data.get("resourceType")
    if only is not None and rt not in only:
        return rt, None, []
    a = fv.check_fhir_resources(rt, data)
    b = schema.check(rt, data)
    return rt, a["valid"] and b["valid"], (a["errors"] + b["errors"])[:2]


def main(schema_path, examples, *readbacks):
    schema = fv.SchemaChecker(schema_path, ascii_regex=True)
    originals = {}
    for path in sorted(Path(examples).glob("*.json")):
        try:
            rt, ok, errors = verdict(schema, path, SHARED)
        except (ValueError, OSError, AttributeError):
            continue
        if rt in SHARED:
            originals[path.name] = (ok, errors)
    valid = sum(ok for ok, _ in originals.values())
    print(f"{len(originals)} official examples of the shared types; {valid} valid under both")
    for name, (ok, errors) in originals.items():
        if not ok:
            print(f"  invalid under the validators: {name}: {errors[0]}")
    failed = 0
    for rb in map(Path, readbacks):
        files = sorted(p for p in rb.glob("*.json"))
        bad = []
        for path in files:
            _, ok, errors = verdict(schema, path)
            if not ok and originals.get(path.name, (False,))[0]:
                bad.append(f"{path.name}: {errors}")
        refused = [l.split("\t")[0] for l in (rb / "refused.tsv").read_text().splitlines() if l]
        print(f"{rb}: {len(files)} read back, {len(files) - len(bad)} pass both validators; "
              f"{len(refused)} refused by the server:")
        for name in refused:
            ok = originals.get(name, (False,))[0]
            print(f"  refused {name} (valid under the validators: {'yes' if ok else 'no'})")
        for b in bad:
            print(f"  FAIL read back invalid: {b}")
        if len(files) + len(refused) != len(originals):
            print(f"  FAIL {len(files)} + {len(refused)} is not {len(originals)}")
            failed += 1
        failed += len(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
