//! The shipped Chinese medicine terminology (SPEC 2): preferred terms with their synonyms,
//! English names and codes, searchable in Chinese and English. 山藥, 淮山 and 懷山 are one
//! herb: a synonym deposited is stored with its preferred term.

use std::collections::HashMap;

crate::coded_enum! {
    /// What a term names.
    pub enum TermKind {
        Herb = "herb";
        Disease = "disease";
        Syndrome = "syndrome";
        Acupoint = "acupoint";
    }
}

impl TermKind {
    /// The code system of the kind's codes.
    pub fn system(self) -> &'static str {
        match self {
            TermKind::Herb => "https://ehrshare.example/fhir/CodeSystem/cm-herb",
            TermKind::Disease => "https://ehrshare.example/fhir/CodeSystem/cm-disease",
            TermKind::Syndrome => "https://ehrshare.example/fhir/CodeSystem/cm-syndrome",
            TermKind::Acupoint => "https://ehrshare.example/fhir/CodeSystem/cm-acupoint",
        }
    }
}

/// One term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub kind: TermKind,
    pub code: String,
    pub preferred: String,
    pub english: String,
    pub synonyms: Vec<String>,
}

/// The table, with every name (and code) indexed per kind.
#[derive(Debug, Clone, Default)]
pub struct Terminology {
    terms: Vec<Term>,
    by_name: HashMap<(TermKind, String), usize>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("terminology line {line}: {problem}")]
pub struct TermError {
    pub line: usize,
    pub problem: String,
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Terminology {
    /// Parses the tab-separated table (`#` comments).
    pub fn parse(text: &str) -> Result<Terminology, TermError> {
        let mut t = Terminology::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |problem: &str| TermError {
                line: i + 1,
                problem: problem.to_owned(),
            };
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                return Err(err(
                    "expected kind, code, preferred term, English name, synonyms",
                ));
            }
            let kind = TermKind::parse(cols[0].trim()).ok_or_else(|| err("unknown kind"))?;
            let term = Term {
                kind,
                code: cols[1].trim().to_owned(),
                preferred: cols[2].trim().to_owned(),
                english: cols[3].trim().to_owned(),
                synonyms: cols
                    .get(4)
                    .map(|s| {
                        s.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if term.code.is_empty() || term.preferred.is_empty() {
                return Err(err("a term needs a code and a preferred name"));
            }
            let idx = t.terms.len();
            let names = [
                term.code.clone(),
                term.preferred.clone(),
                term.english.clone(),
            ]
            .into_iter()
            .chain(term.synonyms.iter().cloned());
            for name in names {
                if let Some(other) = t.by_name.insert((kind, key(&name)), idx)
                    && other != idx
                {
                    return Err(err(&format!("{name:?} already names another term")));
                }
            }
            t.terms.push(term);
        }
        Ok(t)
    }

    /// The shipped table (`config/cm-terminology.tsv`).
    pub fn shipped() -> Terminology {
        Terminology::parse(include_str!("../../../config/cm-terminology.tsv")).unwrap_or_default()
    }

    /// The term a name (preferred, synonym, English name or code) stands for.
    pub fn lookup(&self, kind: TermKind, name: &str) -> Option<&Term> {
        self.by_name
            .get(&(kind, key(name)))
            .and_then(|i| self.terms.get(*i))
    }

    /// Terms whose names contain `query` (Chinese or English), at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Term> {
        let q = key(query);
        if q.is_empty() {
            return Vec::new();
        }
        self.terms
            .iter()
            .filter(|t| {
                std::iter::once(&t.preferred)
                    .chain(std::iter::once(&t.english))
                    .chain(std::iter::once(&t.code))
                    .chain(t.synonyms.iter())
                    .any(|n| key(n).contains(&q))
            })
            .take(limit)
            .collect()
    }

    /// The terms of one kind, in the table's order.
    pub fn of_kind(&self, kind: TermKind) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(move |t| t.kind == kind)
    }

    /// How many terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_find_their_preferred_term() {
        let t = Terminology::shipped();
        assert!(t.len() >= 40, "{}", t.len());
        for name in [
            "淮山",
            "懷山",
            "山藥",
            "H001",
            "dioscoreae rhizoma (chinese yam)",
        ] {
            assert_eq!(
                t.lookup(TermKind::Herb, name).unwrap().preferred,
                "山藥",
                "{name}"
            );
        }
        assert_eq!(t.lookup(TermKind::Disease, "淮山"), None, "kinds are apart");
        assert_eq!(t.search("yam", 5)[0].preferred, "山藥");
        assert_eq!(t.search("北芪", 5)[0].preferred, "黃芪");
        assert!(t.search("  ", 5).is_empty());
        assert!(t.of_kind(TermKind::Herb).all(|h| h.kind == TermKind::Herb));
        assert!(t.of_kind(TermKind::Herb).any(|h| h.preferred == "山藥"));
        assert!(!t.of_kind(TermKind::Disease).any(|h| h.preferred == "山藥"));
    }

    #[test]
    fn a_name_for_two_terms_is_refused() {
        let e = Terminology::parse("herb\tH1\t甲\tA\t丙\nherb\tH2\t乙\tB\t丙\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Terminology::parse("plant\tX\t甲\tA\t\n").is_err());
    }
}
