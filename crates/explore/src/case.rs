//! A case: the modifications one exploration run makes to a scenario.

use std::fmt;

use rampart_scenario::{Error as ScenarioError, Scenario, path};
use toml::{Table, Value};

/// What a case changes in the base scenario: fields set by path, and
/// entries appended to top-level arrays (`attack`, `fault`).
///
/// A case is plain data, so it can be stored in a regressions file,
/// replayed, and compared. Its [`Case::size`] orders cases the way the
/// shrinker makes progress: fewer appended entries first, then values
/// closer to the low ends of their ranges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    /// Fields set by path, in order: (path, value).
    pub sets: Vec<(String, Value)>,
    /// Entries appended to top-level arrays: (array key, entry). The base
    /// scenario's own entries stay first.
    pub appends: Vec<(String, Value)>,
    /// Grid steps above the simplest value, summed over every drawn value
    /// (see [`crate::generate`]); 0 for a case that is all low ends.
    pub distance: u64,
}

/// How big a case is: compared field by field, appended entries first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaseSize {
    /// Entries appended (attackers, faults).
    pub appended: usize,
    /// Grid steps above the low ends.
    pub distance: u64,
}

impl fmt::Display for CaseSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} appended + {} step{}",
            self.appended,
            self.distance,
            if self.distance == 1 { "" } else { "s" }
        )
    }
}

impl Case {
    /// How big the case is.
    pub fn size(&self) -> CaseSize {
        CaseSize {
            appended: self.appends.len(),
            distance: self.distance,
        }
    }

    /// Both cases' changes; `other`'s sets come after (and win over) ours.
    pub fn merge(mut self, other: Case) -> Case {
        self.sets.extend(other.sets);
        self.appends.extend(other.appends);
        self.distance = self.distance.saturating_add(other.distance);
        self
    }

    /// The value this case sets at `path`, if it sets one.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.sets
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
    }

    /// The overrides that apply this case to a document: each appended-to
    /// array written whole (the document's entries, then ours), then the
    /// sets, so a set may reach into an appended entry.
    pub fn overrides(&self, document: &Table) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        for (key, entry) in &self.appends {
            if let Some((_, Value::Array(a))) = out.iter_mut().find(|(k, _)| k == key) {
                a.push(entry.clone());
                continue;
            }
            let mut a = match path::get(document, key) {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            a.push(entry.clone());
            out.push((key.clone(), Value::Array(a)));
        }
        out.extend(self.sets.iter().cloned());
        out
    }

    /// The base scenario with this case applied and validated.
    pub fn apply(&self, base: &Scenario) -> Result<Scenario, ScenarioError> {
        if self.sets.is_empty() && self.appends.is_empty() {
            return Ok(base.clone());
        }
        base.with_overrides(&self.overrides(&base.document), "explore case")
    }

    /// The case as a TOML table: `set = { "path" = value, ... }` and
    /// `append = { attack = [...], ... }`, for a regressions file.
    pub fn to_table(&self) -> Table {
        let mut t = Table::new();
        if !self.sets.is_empty() {
            let mut sets = Table::new();
            for (p, v) in &self.sets {
                sets.insert(p.clone(), v.clone());
            }
            t.insert("set".into(), Value::Table(sets));
        }
        if !self.appends.is_empty() {
            let mut ap = Table::new();
            for (k, v) in &self.appends {
                match ap
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(a) => a.push(v.clone()),
                    _ => unreachable!("only arrays are inserted"),
                }
            }
            t.insert("append".into(), Value::Table(ap));
        }
        t
    }

    /// Reads a case written by [`Case::to_table`]; other keys are ignored
    /// (a regressions entry also says what failed and when). The distance
    /// of a replayed case is unknown and reads as 0.
    pub fn from_table(t: &Table) -> Result<Case, String> {
        let mut c = Case::default();
        match t.get("set") {
            None => {}
            Some(Value::Table(s)) => {
                for (p, v) in s {
                    path::parse(p).map_err(|e| format!("set: {e}"))?;
                    c.sets.push((p.clone(), v.clone()));
                }
            }
            Some(other) => {
                return Err(format!(
                    "`set` must be a table of path = value, not {}",
                    path::type_name(other)
                ));
            }
        }
        match t.get("append") {
            None => {}
            Some(Value::Table(a)) => {
                for (k, v) in a {
                    let Value::Array(items) = v else {
                        return Err(format!("append.{k} must be an array"));
                    };
                    for x in items {
                        c.appends.push((k.clone(), x.clone()));
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "`append` must be a table of arrays, not {}",
                    path::type_name(other)
                ));
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sets.is_empty() && self.appends.is_empty() {
            return f.write_str("(the base scenario, unchanged)");
        }
        let mut first = true;
        for (p, v) in &self.sets {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{p} = {v}")?;
        }
        for (k, v) in &self.appends {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "+ {k}: {v}")?;
        }
        Ok(())
    }
}

/// The order sections are written in a standalone scenario file; others
/// follow in name order, and the assertions come last.
const SECTION_ORDER: [&str; 9] = [
    "run",
    "fleet",
    "scaling",
    "token_service",
    "control",
    "policy",
    "traffic",
    "attack",
    "fault",
];

/// A standalone scenario file for `s`: its resolved document (policy
/// inlined, every override applied, trace paths made absolute), its
/// assertions as `[[assert]]`, no `[explore]` and no variants, so
/// `rampart run FILE` reproduces the run. `header` becomes `#` comments.
pub fn standalone_toml(s: &Scenario, header: &str) -> String {
    let mut doc = s.document.clone();
    // A trace named relative to the original scenario must still resolve
    // from wherever this file is written.
    if let Some(Value::Array(traffic)) = doc.get_mut("traffic") {
        for t in traffic {
            if let Some(Value::Table(model)) = t.get_mut("model")
                && let Some(Value::String(p)) = model.get_mut("path")
            {
                let joined = s.base_dir.join(&*p);
                let abs = std::path::absolute(&joined).unwrap_or(joined);
                *p = abs.display().to_string();
            }
        }
    }
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    let mut keys: Vec<String> = SECTION_ORDER
        .iter()
        .filter(|k| doc.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect();
    keys.extend(
        doc.keys()
            .filter(|k| !SECTION_ORDER.contains(&k.as_str()))
            .cloned(),
    );
    for k in keys {
        let mut one = Table::new();
        one.insert(k.clone(), doc[&k].clone());
        out.push('\n');
        out.push_str(&toml::to_string(&one).unwrap_or_default());
    }
    let mut asserts = Vec::new();
    for a in &s.assertions {
        let mut t = Table::new();
        if let Some(n) = &a.name {
            t.insert("name".into(), Value::String(n.clone()));
        }
        t.insert("that".into(), Value::String(a.expr.clone()));
        if let Some(d) = &a.during {
            t.insert("during".into(), Value::String(d.clone()));
        }
        asserts.push(Value::Table(t));
    }
    if !asserts.is_empty() {
        let mut one = Table::new();
        one.insert("assert".into(), Value::Array(asserts));
        out.push('\n');
        out.push_str(&toml::to_string(&one).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_round_trips_through_its_table() {
        let c = Case {
            sets: vec![
                ("scaling.initial".into(), Value::Integer(3)),
                (
                    "traffic[0].model.shape.rate".into(),
                    Value::String("200/s".into()),
                ),
            ],
            appends: vec![
                (
                    "attack".into(),
                    toml::from_str::<Value>("name = \"a\"").unwrap(),
                ),
                (
                    "attack".into(),
                    toml::from_str::<Value>("name = \"b\"").unwrap(),
                ),
            ],
            distance: 0,
        };
        let back = Case::from_table(&c.to_table()).unwrap();
        // Sets come back in path order; both are the same set of changes.
        let mut want = c.sets.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.sets, want);
        assert_eq!(back.appends, c.appends);
    }

    #[test]
    fn appended_entries_follow_the_documents_own() {
        let doc: Table = toml::from_str("[[attack]]\nname = \"base\"\n").unwrap();
        let c = Case {
            appends: vec![(
                "attack".into(),
                toml::from_str::<Value>("name = \"x\"").unwrap(),
            )],
            ..Case::default()
        };
        let o = c.overrides(&doc);
        let Value::Array(a) = &o[0].1 else { panic!() };
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].get("name"), Some(&Value::String("base".into())));
    }

    #[test]
    fn a_smaller_case_has_fewer_entries_before_smaller_values() {
        let one = CaseSize {
            appended: 1,
            distance: 0,
        };
        let none = CaseSize {
            appended: 0,
            distance: 500,
        };
        assert!(none < one);
    }
}
