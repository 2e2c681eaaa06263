#!/usr/bin/env python3
"""Validate FHIR R4 (4.0.1) JSON resources with two independent validators.

  (a) fhir.resources (R4 models): parse the resource by its resourceType.
      Works with 5.1.1 (classic models, FHIRValidationError) and with the
      pydantic-based 6.0-6.2.x line (construct_fhir_element, pydantic errors).
  (b) python-jsonschema Draft6Validator against the official R4 JSON schema,
      validating against #/definitions/<resourceType> (one validator per type, cached).
Files are read with a strict JSON loader (duplicate keys, NaN/Infinity refused; label "json").

usage: fhir_validate.py --schema fhir.schema.json [--json-out FILE] [--expect-invalid] [--ascii-regex] FILE_OR_DIR...
Exit 0 if every file is valid under both (or, with --expect-invalid, refused by at least one), else 1.
"""
import argparse, copy, json, logging, re, sys, time
from importlib.metadata import version
from pathlib import Path

import fhir.resources
import jsonschema

MAX_MSG = 300  # error messages of jsonschema can embed whole instances


class DuplicateKey(ValueError):
    pass


def _no_dupes(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise DuplicateKey(f"duplicate JSON key {k!r}")
        obj[k] = v
    return obj


def _no_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def load_strict(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=_no_dupes, parse_constant=_no_constant)


class _Capture(logging.Handler):  # fhir.resources 5.x only *logs* some problems (e.g. bad dates)
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


_cap = _Capture()
_log = logging.getLogger("fhir.resources")
_log.addHandler(_cap)
_log.propagate = False

from fhir.resources.resource import Resource  # same module path in 5.x and 6.x

if hasattr(fhir.resources, "construct_fhir_element"):  # pydantic-based (6.x)
    from pydantic import ValidationError

    def _fhir_parse(rt, data):
        try:
            klass = fhir.resources.get_fhir_model_class(rt)
        except KeyError:
            klass = None
        if not (isinstance(klass, type) and issubclass(klass, Resource)):
            return [f"unknown resourceType {rt!r}"]
        try:
            klass.parse_obj(data)
            return []
        except ValidationError as e:
            return ["/".join(map(str, err["loc"])) + ": " + err["msg"] for err in e.errors()]
else:  # classic models (5.x)
    from fhir.resources.fhirabstractbase import FHIRValidationError
    from fhir.resources.fhirelementfactory import FHIRElementFactory

    def _flatten(err, prefix=""):
        if isinstance(err, FHIRValidationError):
            p = ".".join(x for x in (prefix, err.path or "") if x)
            return [m for sub in err.errors for m in _flatten(sub, p)]
        return [f"{prefix or '(root)'}: {err}"]

    def _fhir_parse(rt, data):
        klass = type(FHIRElementFactory.instantiate(rt, None))  # unknown names fall back to Element
        if klass.__name__ != rt or not issubclass(klass, Resource):
            return [f"unknown resourceType {rt!r}"]
        try:
            klass(data, strict=True)
            return []
        except FHIRValidationError as e:
            return _flatten(e)


def check_fhir_resources(rt, data):
    _cap.records.clear()
    try:
        errors = _fhir_parse(rt, data)
    except Exception as e:  # library crash on odd input: count as refusal, keep going
        errors = [f"{type(e).__name__}: {e}"]
    return {"valid": not errors, "errors": errors, "warnings": list(_cap.records)}


class SchemaChecker:
    """Draft-06 validation against #/definitions/<resourceType>, one compiled validator per type.

    The schema's ResourceList (contained, Bundle.entry.resource, ...) is a oneOf over all ~146
    resources: slow, and its errors are useless. Every branch pins resourceType with "const", so
    at most one branch can match; we validate only the branch of the instance's own resourceType.
    That accepts and refuses exactly the same documents, about 5x faster on these examples, with precise errors.
    """

    def __init__(self, schema_path, ascii_regex=False):
        with open(schema_path, encoding="utf-8") as f:
            self.defs = json.load(f)["definitions"]
        self.cache = {}
        # Erratum of the published R4 schema: its FHIRVersion enums stop at 4.0.0, although R4's
        # own version, 4.0.1, is in the FHIRVersion value set it was generated from (so the
        # official R4 example CapabilityStatements fail it too). 4.0.1 is added, nothing else.
        for d, path in (("CapabilityStatement", ("fhirVersion",)), ("StructureDefinition", ("fhirVersion",)),
                        ("ImplementationGuide", ("fhirVersion", "items")),
                        ("ImplementationGuide_Resource", ("fhirVersion", "items"))):
            node = self.defs[d]["properties"]
            for key in path:
                node = node[key]
            if "4.0.1" not in node["enum"]:
                node["enum"].append("4.0.1")
        resource_list = self.defs["ResourceList"]["oneOf"]
        branch = {s["$ref"].rsplit("/", 1)[1]: i for i, s in enumerate(resource_list)}
        plain_one_of = jsonschema.Draft6Validator.VALIDATORS["oneOf"]

        def one_of(validator, one_of_value, instance, schema):
            if one_of_value is not resource_list or not isinstance(instance, dict) \
                    or not isinstance(instance.get("resourceType"), str):
                yield from plain_one_of(validator, one_of_value, instance, schema)
            elif instance["resourceType"] not in branch:
                yield jsonschema.ValidationError(f"unknown resourceType {instance['resourceType']!r}")
            else:
                i = branch[instance["resourceType"]]
                yield from validator.descend(instance, one_of_value[i], schema_path=i)

        def ascii_pattern(validator, pattern, instance, schema):  # \s,\S as in Java: ASCII whitespace only
            if validator.is_type(instance, "string") and not re.search(pattern, instance, re.ASCII):
                yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r} (ASCII regex)")

        extra = {"pattern": ascii_pattern} if ascii_regex else {}
        self.cls = jsonschema.validators.extend(jsonschema.Draft6Validator, {"oneOf": one_of, **extra})

    def check(self, rt, data):
        d = self.defs.get(rt)
        if not isinstance(d, dict) or "resourceType" not in d.get("properties", {}):
            return {"valid": False, "errors": [f"$: unknown resourceType {rt!r}"]}
        if rt not in self.cache:
            self.cache[rt] = self.cls({"$ref": f"#/definitions/{rt}", "definitions": self.defs})
        errs = sorted(self.cache[rt].iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        errors = [f"{e.json_path}: {e.message[:MAX_MSG]}" for e in errs]
        return {"valid": not errors, "errors": errors}


def iter_files(args):
    for a in args:
        p = Path(a)
        yield from (sorted(p.rglob("*.json")) if p.is_dir() else [p])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--schema", required=True, help="official R4 fhir.schema.json")
    ap.add_argument("--json-out", help="write a JSON array of per-file results here")
    ap.add_argument("--expect-invalid", action="store_true", help="succeed only if every file is refused")
    ap.add_argument("--ascii-regex", action="store_true",
                    help="schema patterns use ASCII \\s/\\S (Java-like); by default Python's Unicode \\s, "
                         "under which e.g. a no-break space fails the string pattern [ \\r\\n\\t\\S]+")
    ap.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    schema = SchemaChecker(a.schema, a.ascii_regex)
    t_load = time.perf_counter() - t0
    results, t_fr, t_js, accepted = [], 0.0, 0.0, []
    for path in iter_files(a.paths):
        rec = {"file": str(path), "resourceType": None, "fhir_resources": None, "json_schema": None}
        try:
            data = load_strict(path)
            if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
                raise ValueError("not a JSON object with a string resourceType")
        except (OSError, ValueError) as e:  # JSONDecodeError and DuplicateKey are ValueErrors
            rec["json"] = {"valid": False, "errors": [f"{type(e).__name__}: {e}"]}
            results.append(rec)
            print(f"FAIL {path} json: {rec['json']['errors'][0]}")
            continue
        rt = rec["resourceType"] = data["resourceType"]
        mine = copy.deepcopy(data)  # the library must not see (or alter) the schema's instance
        t = time.perf_counter()
        rec["fhir_resources"] = check_fhir_resources(rt, mine)
        t_fr += time.perf_counter() - t
        t = time.perf_counter()
        rec["json_schema"] = schema.check(rt, data)
        t_js += time.perf_counter() - t
        results.append(rec)
        bad = [(k, rec[k]["errors"][0]) for k in ("fhir_resources", "json_schema") if not rec[k]["valid"]]
        if bad:
            print(f"FAIL {path} {bad[0][0]}: {bad[0][1]}" + (f" (+{bad[1][0]} too)" if len(bad) > 1 else ""))
        else:
            accepted.append(str(path))
            print(f"OK {path}")

    n = len(results)
    ok_fr = sum(1 for r in results if r["fhir_resources"] and r["fhir_resources"]["valid"])
    ok_js = sum(1 for r in results if r["json_schema"] and r["json_schema"]["valid"])
    per = lambda t: f"{t:.3f}s total, {1000 * t / max(n, 1):.2f} ms/resource"
    print(f"# {n} files; fhir.resources {version('fhir.resources')} valid {ok_fr}: {per(t_fr)}; "
          f"jsonschema {version('jsonschema')} valid {ok_js}: "
          f"{per(t_js)}; schema load {t_load:.2f}s; valid under both {len(accepted)}", file=sys.stderr)
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    if a.expect_invalid:
        for p in accepted:
            print(f"ACCEPTED-BY-BOTH {p}")
        return 0 if n and not accepted else 1
    return 0 if n and len(accepted) == n else 1


if __name__ == "__main__":
    sys.exit(main())
