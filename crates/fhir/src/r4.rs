//! Validation against the published FHIR R4 (4.0.1) definitions (ADR 0011).
//!
//! Two published sources, both in `crates/fhir/r4/`:
//! - the official R4 JSON schema (`fhir.schema.json`), compiled once with the `jsonschema`
//!   crate: unknown elements, JSON types, arrays against single values, required complex
//!   elements, required bindings (enums) and primitive formats;
//! - what the schema cannot say, taken from the StructureDefinitions by
//!   `scripts/fhir-r4-tables` (`elements.tsv`): a choice element `x[x]` takes at most one type
//!   (at least one where its minimum is 1), and a primitive element with a minimum of 1 is
//!   required.
//!
//! On top, the rules of FHIR JSON itself that neither encodes: dates are calendar dates, no
//! `null`, no empty string, object or array (ele-1), an extension has a value or extensions
//! but not both (ext-1), and every contained resource is validated as its own type. Every
//! problem carries its FHIRPath-like path; all of them are reported together.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::{Map, Value};

use crate::problem::Problem;

const SCHEMA: &str = include_str!("../r4/fhir.schema.json");
const ELEMENTS: &str = include_str!("../r4/elements.tsv");

/// Where a property leads.
#[derive(Debug)]
struct Target {
    /// The schema definition of its values (a primitive's name for inline primitives).
    def: String,
    array: bool,
}

#[derive(Debug)]
struct Choice {
    base: String,
    names: Vec<String>,
    min: u32,
}

/// A required binding the schema does not list: the codes of its value set (for a Coding or
/// CodeableConcept, as `system#code`).
#[derive(Debug)]
struct Binding {
    element: String,
    codes: HashSet<String>,
    coding: bool,
}

/// A complex type or resource: its properties and the rules the schema leaves out.
#[derive(Debug, Default)]
struct Shape {
    properties: HashMap<String, Target>,
    choices: Vec<Choice>,
    required: Vec<String>,
    bindings: Vec<Binding>,
    resource: bool,
}

/// The R4 definitions. A resource type's schema validator is compiled the first time that
/// type is seen (about 50 ms; the whole schema at once takes minutes) and kept.
pub struct Definitions {
    definitions: Value,
    validators: RwLock<HashMap<String, Arc<jsonschema::Validator>>>,
    shapes: HashMap<String, Shape>,
}

impl std::fmt::Debug for Definitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definitions")
            .field("shapes", &self.shapes.len())
            .finish_non_exhaustive()
    }
}

/// The primitive types whose values must also be calendar dates.
const DATED: [&str; 3] = ["date", "dateTime", "instant"];

/// The integer primitive types (the schema's patterns do not apply to JSON numbers).
const INTEGERS: [&str; 3] = ["integer", "positiveInt", "unsignedInt"];

/// Whether a number's text is a FHIR integer of type `def` (32-bit; positiveInt from 1,
/// unsignedInt from 0), read as text.
fn integer_ok(def: &str, text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(n) = text.parse::<i64>() else {
        return false;
    };
    match def {
        "positiveInt" => (1..=i64::from(i32::MAX)).contains(&n),
        "unsignedInt" => (0..=i64::from(i32::MAX)).contains(&n),
        _ => (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&n),
    }
}

/// The shipped definitions, once read.
static SHIPPED: OnceLock<Definitions> = OnceLock::new();

impl Definitions {
    /// The shipped definitions, read on first use.
    pub fn shipped() -> &'static Definitions {
        SHIPPED.get_or_init(|| {
            #[allow(clippy::expect_used)]
            Definitions::compile(SCHEMA, ELEMENTS).expect("the shipped R4 definitions compile")
        })
    }

    /// Whether a resource of type `rt` is checked without first reading the definitions or
    /// compiling its validator (tens of milliseconds): both done already.
    pub fn ready_for(rt: &str) -> bool {
        SHIPPED.get().is_some_and(|d| {
            d.validators
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(rt)
        })
    }

    fn compile(schema: &str, elements: &str) -> Result<Definitions, String> {
        let mut schema: Value = serde_json::from_str(schema).map_err(|e| e.to_string())?;
        let defs = schema
            .get_mut("definitions")
            .and_then(Value::as_object_mut)
            .ok_or("no definitions")?;
        // Contained resources are validated one by one as their own type, with paths that
        // say where; the schema's `oneOf` over every resource type says only "no match".
        defs.insert("ResourceList".to_owned(), serde_json::json!({}));
        // The R4 patterns are XML Schema's, where `\S` excludes only the four ASCII spaces:
        // `[ \r\n\t\S]` (string, markdown) is any character. With Unicode classes it would
        // refuse a no-break space, which the official examples carry.
        for def in defs.values_mut() {
            xml_schema_patterns(def);
        }
        let mut by_pattern = HashMap::new();
        for name in DATED.into_iter().chain(INTEGERS) {
            if let Some(p) = defs.get(name).and_then(|d| d.get("pattern")) {
                by_pattern.insert(p.to_string(), name);
            }
        }
        let mut shapes = HashMap::new();
        for (name, def) in defs.iter() {
            let Some(props) = def.get("properties").and_then(Value::as_object) else {
                continue;
            };
            let mut shape = Shape {
                resource: props.contains_key("resourceType"),
                ..Shape::default()
            };
            for (key, prop) in props {
                let (inner, array) = match prop.get("items") {
                    Some(items) => (items, true),
                    None => (prop, false),
                };
                let def = match inner.get("$ref").and_then(Value::as_str) {
                    Some(r) => r.rsplit('/').next().unwrap_or_default().to_owned(),
                    None => inner
                        .get("pattern")
                        .and_then(|p| by_pattern.get(&p.to_string()))
                        .map(|n| (*n).to_owned())
                        .unwrap_or_default(),
                };
                shape.properties.insert(key.clone(), Target { def, array });
            }
            shapes.insert(name.clone(), shape);
        }
        for line in elements.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let [def, element, kind, min, rest] = cols[..] else {
                return Err(format!("elements.tsv: {line:?}"));
            };
            let shape = shapes
                .get_mut(def)
                .ok_or_else(|| format!("elements.tsv: no definition {def}"))?;
            let min: u32 = min.parse().map_err(|_| format!("elements.tsv: {line:?}"))?;
            match kind {
                "choice" => shape.choices.push(Choice {
                    base: element.to_owned(),
                    names: rest.split(' ').map(str::to_owned).collect(),
                    min,
                }),
                "code-binding" | "coding-binding" => shape.bindings.push(Binding {
                    element: element.to_owned(),
                    codes: rest.split(' ').map(str::to_owned).collect(),
                    coding: kind == "coding-binding",
                }),
                _ => shape.required.push(element.to_owned()),
            }
        }
        let definitions = schema
            .get_mut("definitions")
            .map(Value::take)
            .unwrap_or_default();
        Ok(Definitions {
            definitions,
            validators: RwLock::default(),
            shapes,
        })
    }

    /// The schema validator of resource type `rt`, compiled on first use.
    fn validator(&self, rt: &str) -> Option<Arc<jsonschema::Validator>> {
        if let Some(v) = self
            .validators
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(rt)
        {
            return Some(v.clone());
        }
        let root = serde_json::json!({
            "$schema": "http://json-schema.org/draft-06/schema#",
            "allOf": [{"$ref": format!("#/definitions/{rt}")}],
            "definitions": self.definitions,
        });
        let compiled = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft6)
                .build(&root)
                .ok()?,
        );
        self.validators
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(rt.to_owned(), compiled.clone());
        Some(compiled)
    }

    /// Compiles the validators of `types` now, so that no request waits for one.
    pub fn warm(&self, types: &[&str]) {
        for t in types {
            let _ = self.validator(t);
        }
    }

    /// Whether `name` is an R4 resource type.
    pub fn is_resource(&self, name: &str) -> bool {
        self.shapes.get(name).is_some_and(|s| s.resource)
    }

    /// Every problem of `resource` against R4, each with its path; empty when valid. At most
    /// [`MAX_PROBLEMS`], so that no input makes the answer (or the work) grow without bound.
    pub fn validate(&self, resource: &Value) -> Vec<Problem> {
        let mut out = Problems::default();
        let name = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("$")
            .to_owned();
        self.resource(resource, &mut Path::new(name), &mut out);
        out.list
    }

    fn resource<'v>(&self, v: &'v Value, path: &mut Path<'v>, out: &mut Problems) {
        let Some(obj) = v.as_object() else {
            out.say(path, None, "a resource is a JSON object");
            return;
        };
        let rt = match obj.get("resourceType") {
            Some(Value::String(rt)) if self.is_resource(rt) => rt.as_str(),
            Some(Value::String(rt)) => {
                out.say(
                    path,
                    Some("resourceType"),
                    format!("{rt:?} is not an R4 resource type"),
                );
                return;
            }
            _ => {
                out.say(path, Some("resourceType"), "required");
                return;
            }
        };
        // Our own walk first: its messages are the more specific ones for a path.
        self.walk(rt, obj, path, out);
        match self.validator(rt) {
            Some(validator) => {
                let root = path.render(None);
                for e in validator.iter_errors(v) {
                    if out.full() {
                        break;
                    }
                    self.schema_problem(rt, &root, &e, out);
                }
            }
            None => out.say(
                path,
                Some("resourceType"),
                "this server cannot validate this resource type",
            ),
        }
    }

    fn schema_problem(
        &self,
        rt: &str,
        root: &str,
        e: &jsonschema::ValidationError<'_>,
        out: &mut Problems,
    ) {
        use jsonschema::error::ValidationErrorKind as K;
        let mut path = root.to_owned();
        let mut def = rt.to_owned();
        for seg in e.instance_path().iter() {
            match seg {
                jsonschema::paths::LocationSegment::Property(p) => {
                    path.push('.');
                    path.push_str(&p);
                    def = self
                        .shapes
                        .get(&def)
                        .and_then(|s| s.properties.get(p.as_ref()))
                        .map(|t| t.def.clone())
                        .unwrap_or_default();
                }
                jsonschema::paths::LocationSegment::Index(i) => {
                    path.push_str(&format!("[{i}]"));
                }
            }
        }
        if out.aligned_nulls.contains(&path) {
            // A null the walk allowed: it aligns a repeating primitive with its extensions.
            return;
        }
        match e.kind() {
            K::AdditionalProperties { unexpected } => {
                for u in unexpected {
                    out.push(format!("{path}.{u}"), "unknown element");
                }
            }
            K::Required { property } => {
                let p = property.as_str().unwrap_or_default();
                out.push(format!("{path}.{p}"), "required");
            }
            K::Enum { options } => {
                let list: Vec<&str> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                out.push(path, format!("must be one of: {}", list.join(", ")));
            }
            K::Pattern { .. } if !def.is_empty() => {
                let message = format!("not a valid FHIR {def}");
                out.push(path, message);
            }
            K::Pattern { .. } => out.push(path, "not in the FHIR format of this element"),
            K::Type { kind } => out.push(path, format!("must be of JSON type {kind:?}")),
            _ => {
                let mut text = e.to_string();
                text.truncate(text.floor_char_boundary(200));
                out.push(path, text);
            }
        }
    }

    fn walk<'v>(
        &self,
        def: &str,
        obj: &'v Map<String, Value>,
        path: &mut Path<'v>,
        out: &mut Problems,
    ) {
        let Some(shape) = self.shapes.get(def) else {
            return;
        };
        if out.full() {
            return;
        }
        if obj.is_empty() {
            out.say(
                path,
                None,
                "an element has a value or children (ele-1): {} is neither",
            );
        }
        for (key, value) in obj {
            match value {
                Value::Null => {
                    out.say(
                        path,
                        Some(key),
                        "null is not a FHIR value: leave the element out",
                    );
                    continue;
                }
                Value::Array(items) if items.is_empty() => {
                    out.say(
                        path,
                        Some(key),
                        "an empty array is not a FHIR value: leave it out",
                    );
                    continue;
                }
                _ => {}
            }
            let Some(target) = shape.properties.get(key) else {
                continue;
            };
            path.push(Seg::Key(key));
            if target.array {
                if let Value::Array(items) = value {
                    // `[x, null]` beside `_key: [null, {...}]` is how FHIR JSON aligns a
                    // repeating primitive with its extensions: null is allowed only there.
                    let partner = match key.strip_prefix('_') {
                        Some(k) => k.to_owned(),
                        None => format!("_{key}"),
                    };
                    let aligned = obj.contains_key(&partner);
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        if item.is_null() {
                            if aligned {
                                out.aligned_nulls.insert(path.render(None));
                            } else {
                                out.say(path, None, "null is not a FHIR value");
                            }
                        } else {
                            self.value(&target.def, item, path, out);
                        }
                        path.pop();
                    }
                }
            } else {
                self.value(&target.def, value, path, out);
            }
            path.pop();
        }
        for choice in &shape.choices {
            let present: Vec<&str> = choice
                .names
                .iter()
                .filter(|n| obj.contains_key(n.as_str()) || obj.contains_key(&format!("_{n}")))
                .map(String::as_str)
                .collect();
            let at = format!("{}[x]", choice.base);
            if present.len() > 1 {
                out.say(
                    path,
                    Some(&at),
                    format!("one value at most, but found {}", present.join(" and ")),
                );
            } else if present.is_empty() && choice.min > 0 {
                out.say(path, Some(&at), "required");
            }
        }
        for b in &shape.bindings {
            self.binding(b, obj, path, out);
        }
        let contained = path.in_contained();
        if shape.resource && contained {
            if obj.contains_key("contained") {
                out.say(
                    path,
                    Some("contained"),
                    "a contained resource contains no others (dom-2)",
                );
            }
            let meta = obj.get("meta");
            for key in ["versionId", "lastUpdated"] {
                if meta.and_then(|m| m.get(key)).is_some() {
                    out.say(
                        path,
                        Some(&format!("meta.{key}")),
                        "a contained resource has no version or update time (dom-4)",
                    );
                }
            }
        }
        for name in &shape.required {
            if !obj.contains_key(name) && !obj.contains_key(&format!("_{name}")) {
                out.say(path, Some(name), "required");
            }
        }
        if def == "Extension" {
            let nested = obj.contains_key("extension");
            // `_valueString` (the value's own extensions) is a value too.
            let valued = obj
                .keys()
                .any(|k| k.starts_with("value") || k.starts_with("_value"));
            if nested == valued {
                out.say(
                    path,
                    None,
                    "an extension has a value or nested extensions: one, not both (ext-1)",
                );
            }
        }
        if shape.resource && !contained {
            self.contained_referenced(obj, path, out);
        }
    }

    /// dom-3: every contained resource is referenced (`#id`) from elsewhere in the resource
    /// or from another contained resource, or refers to the resource that contains it (`#`).
    fn contained_referenced(&self, obj: &Map<String, Value>, path: &Path<'_>, out: &mut Problems) {
        let Some(Value::Array(contained)) = obj.get("contained") else {
            return;
        };
        let mut refs = HashSet::new();
        for v in obj.values() {
            local_references(v, &mut refs);
        }
        for (i, c) in contained.iter().enumerate() {
            let Some(id) = c.get("id").and_then(Value::as_str) else {
                continue;
            };
            let mut own = HashSet::new();
            local_references(c, &mut own);
            if !refs.contains(id) && !own.contains("") {
                out.say(
                    path,
                    Some(&format!("contained[{i}]")),
                    format!("nothing in the resource refers to #{id} (dom-3)"),
                );
            }
        }
    }

    fn binding<'v>(
        &self,
        b: &Binding,
        obj: &'v Map<String, Value>,
        path: &mut Path<'v>,
        out: &mut Problems,
    ) {
        let Some((key, found)) = obj.get_key_value(&b.element) else {
            return;
        };
        let values: Vec<(Option<usize>, &Value)> = match found {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Some(i), v))
                .collect(),
            v => vec![(None, v)],
        };
        path.push(Seg::Key(key));
        for (index, v) in values {
            if let Some(i) = index {
                path.push(Seg::Index(i));
            }
            if !b.coding {
                if let Some(code) = v.as_str()
                    && !b.codes.contains(code)
                {
                    out.say(
                        path,
                        None,
                        format!("{code:?} is not a code of its required value set"),
                    );
                }
            } else {
                // A CodeableConcept's codings (or a Coding itself) from the bound systems
                // must be codes of the value set.
                let codings: Vec<(Option<usize>, &Value)> = match v.get("coding") {
                    Some(Value::Array(list)) => {
                        list.iter().enumerate().map(|(i, c)| (Some(i), c)).collect()
                    }
                    _ => vec![(None, v)],
                };
                for (ci, c) in codings {
                    let (Some(system), Some(code)) = (
                        c.get("system").and_then(Value::as_str),
                        c.get("code").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let prefix = format!("{system}#");
                    if b.codes.iter().any(|k| k.starts_with(&prefix))
                        && !b.codes.contains(&format!("{system}#{code}"))
                    {
                        let at = match ci {
                            Some(i) => format!("coding[{i}].code"),
                            None => "code".to_owned(),
                        };
                        out.say(
                            path,
                            Some(&at),
                            format!("{code:?} is not a code of its required value set"),
                        );
                    }
                }
            }
            if index.is_some() {
                path.pop();
            }
        }
        path.pop();
    }

    fn value<'v>(&self, def: &str, value: &'v Value, path: &mut Path<'v>, out: &mut Problems) {
        match value {
            Value::Object(_) if def == "ResourceList" => self.resource(value, path, out),
            Value::Object(o) => self.walk(def, o, path, out),
            _ if def == "ResourceList" => out.say(path, None, "a resource is a JSON object"),
            // The schema's complex types say nothing of JSON type: an array or a string where
            // a Coding belongs would pass it.
            _ if self.shapes.contains_key(def) => {
                out.say(path, None, format!("must be a JSON object (a FHIR {def})"));
            }
            Value::Number(n) if INTEGERS.contains(&def) && !integer_ok(def, &n.to_string()) => {
                out.say(path, None, format!("not a valid FHIR {def}"));
            }
            Value::String(s) if s.is_empty() => {
                out.say(
                    path,
                    None,
                    "an empty string is not a FHIR value: leave it out",
                );
            }
            Value::String(s) if def == "base64Binary" && !base64_ok(s) => {
                out.say(path, None, "not base64");
            }
            Value::String(s) if DATED.contains(&def) && !calendar_date(s) => {
                out.say(path, None, "not a calendar date");
            }
            _ => {}
        }
    }
}

pub use crate::problem::MAX_PROBLEMS;

/// One step of a path.
#[derive(Debug, Clone, Copy)]
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

/// Where the walk is, kept as steps and written out only when a problem is said: a path
/// string for every element would cost the resource's size times its depth.
#[derive(Debug)]
struct Path<'v> {
    root: String,
    steps: Vec<Seg<'v>>,
}

impl<'v> Path<'v> {
    fn new(root: String) -> Self {
        Path {
            root,
            steps: Vec::new(),
        }
    }

    fn push(&mut self, seg: Seg<'v>) {
        self.steps.push(seg);
    }

    fn pop(&mut self) {
        self.steps.pop();
    }

    fn in_contained(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Seg::Key("contained")))
    }

    /// The FHIRPath-like text, with `then` (an element's name) after it.
    fn render(&self, then: Option<&str>) -> String {
        let mut out = self.root.clone();
        for s in &self.steps {
            match s {
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if let Some(t) = then {
            out.push('.');
            out.push_str(t);
        }
        out
    }
}

/// Problems, one per path (the first said is kept), at most [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
struct Problems {
    list: Vec<Problem>,
    paths: HashSet<String>,
    /// Nulls the walk allowed (aligned primitive arrays), which the schema would refuse.
    aligned_nulls: HashSet<String>,
}

impl Problems {
    fn full(&self) -> bool {
        self.list.len() >= MAX_PROBLEMS
    }

    fn say(&mut self, path: &Path<'_>, then: Option<&str>, message: impl Into<String>) {
        if !self.full() {
            self.push(path.render(then), message);
        }
    }

    fn push(&mut self, path: String, message: impl Into<String>) {
        if !self.full() && !self.paths.contains(&path) {
            self.paths.insert(path.clone());
            self.list.push(Problem {
                path,
                message: message.into(),
            });
        }
    }
}

/// The ids that local references (`#id`) anywhere in `v` point at, in a Reference or a
/// canonical, uri or url value (`#` alone, the containing resource, is the empty id).
fn local_references(v: &Value, refs: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix('#')
                && !id.contains(char::is_whitespace)
            {
                refs.insert(id.to_owned());
            }
        }
        Value::Object(o) => o.values().for_each(|x| local_references(x, refs)),
        Value::Array(list) => list.iter().for_each(|x| local_references(x, refs)),
        _ => {}
    }
}

/// Every `pattern` under `v` with `[ \r\n\t\S]` read as XML Schema reads it (any character):
/// the definitions' own and those written inline in properties (`valueString`, ...).
fn xml_schema_patterns(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    Value::String(p) if k == "pattern" => {
                        *p = p.replace(r"[ \r\n\t\S]", r"[\s\S]");
                    }
                    _ => xml_schema_patterns(x),
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(xml_schema_patterns),
        _ => {}
    }
}

/// Whether `s` is base64 (RFC 4648, padded; whitespace between groups allowed).
fn base64_ok(s: &str) -> bool {
    let chars: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body = chars
        .iter()
        .position(|&b| b == b'=')
        .map_or(&chars[..], |i| &chars[..i]);
    let pad = chars.len() - body.len();
    chars.len().is_multiple_of(4)
        && pad <= 2
        && chars[body.len()..].iter().all(|&b| b == b'=')
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Whether the date part of a FHIR date, dateTime or instant that looks right (the schema
/// checks the format) names a day that exists: `2024-02-30` and `2023-02-29` do not.
fn calendar_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return true;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return true;
    };
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(v: Value) -> Vec<String> {
        Definitions::shipped()
            .validate(&v)
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    fn observation() -> Value {
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
               "subject": {"reference": "Patient/1"},
               "effectiveDateTime": "2024-02-29T10:00:00+08:00",
               "valueQuantity": {"value": 6.10, "unit": "g/dL"}})
    }

    #[test]
    fn a_valid_resource_has_no_problems() {
        assert_eq!(paths(observation()), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_problem_is_named_by_its_path() {
        let mut o = observation();
        o["valueQuantityy"] = json!({"value": 1});
        o["valueString"] = json!("also");
        o["status"] = json!("done");
        o["issued"] = json!("2023-02-29T10:00:00Z");
        o["code"]["coding"][0]["codee"] = json!("x");
        o["note"] = json!([]);
        o["method"] = json!({});
        o["contained"] = json!([{"resourceType": "Medication", "id": "m", "foo": 1}]);
        o["focus"] = json!([{"reference": "#m"}]);
        o["extension"] = json!([{"valueString": "no url"}]);
        let mut got = paths(o);
        got.sort();
        let mut want = vec![
            "Observation.valueQuantityy",
            "Observation.value[x]",
            "Observation.status",
            "Observation.issued",
            "Observation.code.coding[0].codee",
            "Observation.note",
            "Observation.method",
            "Observation.contained[0].foo",
            "Observation.extension[0].url",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn required_primitives_and_choices_are_required() {
        let rx = json!({"resourceType": "MedicationRequest", "status": "active",
                        "subject": {"reference": "Patient/1"}});
        assert_eq!(
            paths(rx),
            [
                "MedicationRequest.medication[x]",
                "MedicationRequest.intent"
            ]
        );
    }

    #[test]
    fn what_r4_allows_is_not_refused() {
        let mut o = observation();
        // A no-break space and an ideographic space in text, inline patterns included.
        o["valueQuantity"] = Value::Null;
        o.as_object_mut().unwrap().remove("valueQuantity");
        o["valueString"] = json!("6.1\u{a0}g/dL\u{3000}正常");
        // A repeating primitive aligned with its extensions by nulls.
        o["performer"] = json!([{"display": "Dr A"}]);
        o["note"] = json!([{"text": "x"}]);
        o["code"]["coding"][0]["display"] = json!("血紅素");
        o["extension"] = json!([{"url": "http://example.org/x",
            "_valueCode": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}]);
        o["contained"] = json!([{"resourceType": "Provenance", "id": "p",
            "target": [{"reference": "#"}], "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"display": "x"}}]}]);
        assert_eq!(paths(o), Vec::<String>::new());
        let patient = json!({"resourceType": "Patient",
            "name": [{"given": ["Tai", null], "_given": [null, {"extension": [
                {"url": "http://example.org/initial", "valueBoolean": true}]}]}]});
        assert_eq!(paths(patient), Vec::<String>::new());
    }

    #[test]
    fn problems_are_bounded() {
        let mut o = observation();
        o["note"] = json!((0..1000).map(|_| json!({})).collect::<Vec<_>>());
        assert_eq!(paths(o).len(), MAX_PROBLEMS);
    }

    #[test]
    fn integers_are_32_bit_and_whole() {
        assert!(integer_ok("integer", "-5") && integer_ok("unsignedInt", "0"));
        for (def, bad) in [
            ("integer", "1.5"),
            ("integer", "2147483648"),
            ("positiveInt", "0"),
            ("unsignedInt", "-1"),
            ("integer", "1e2"),
        ] {
            assert!(!integer_ok(def, bad), "{def} {bad}");
        }
    }

    #[test]
    fn base64() {
        assert!(base64_ok("SGVsbG8=") && base64_ok("SGVs bG8h"));
        assert!(!base64_ok("Hello world!") && !base64_ok("SGVsbG8") && !base64_ok("S=Vs"));
    }

    #[test]
    fn calendar_dates() {
        for good in [
            "2024",
            "2024-02",
            "2024-02-29",
            "2000-02-29",
            "2024-12-31T23:59:59Z",
        ] {
            assert!(calendar_date(good), "{good}");
        }
        for bad in ["2023-02-29", "1900-02-29", "2024-04-31", "2024-02-30"] {
            assert!(!calendar_date(bad), "{bad}");
        }
    }
}
