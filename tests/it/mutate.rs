//! Mutated scenario files (deleted lines, swapped types, garbage bytes,
//! huge numbers, deep nesting) never panic the loader: each is either still
//! valid or rejected with located diagnostics, and the CLI exits 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use rampart_scenario::{Error, Scenario};

fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.push(root.join("tests/it/fixtures/asserted.toml"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    SwapValue(usize, &'static str),
    Garbage(usize, Vec<u8>),
    HugeNumber(usize, &'static str),
    DeepNesting(usize, usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = prop::sample::select(vec![
        "\"x\"",
        "1",
        "-1",
        "0",
        "true",
        "[]",
        "{}",
        "1.5",
        "\"\"",
        "[1, \"a\"]",
        "{ kind = \"nope\" }",
        "\"-5s\"",
        "\"0/s\"",
        "nan",
        "inf",
    ]);
    let huge = prop::sample::select(vec![
        "99999999999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "\"99999999999999h\"",
        "\"1e30/s\"",
        "4294967296",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        (any::<usize>(), values).prop_map(|(i, v)| Mutation::SwapValue(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Garbage(i, b)),
        (any::<usize>(), huge).prop_map(|(i, v)| Mutation::HugeNumber(i, v)),
        (any::<usize>(), 1usize..3000, any::<bool>())
            .prop_map(|(i, d, arr)| Mutation::DeepNesting(i, d, arr)),
    ]
}

/// Lines of the form `key = value`, whose value can be replaced.
fn value_lines(lines: &[&str]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(" = "))
        .map(|(i, _)| i)
        .collect()
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    let borrowed: Vec<&str> = text.lines().collect();
    let vl = value_lines(&borrowed);
    match m {
        Mutation::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % n);
            }
        }
        Mutation::SwapValue(i, v) | Mutation::HugeNumber(i, v) => {
            if !vl.is_empty() {
                let l = vl[i % vl.len()];
                let key = lines[l].split(" = ").next().unwrap().to_owned();
                lines[l] = format!("{key} = {v}");
            }
        }
        Mutation::Garbage(i, bytes) => {
            let mut b = text.as_bytes().to_vec();
            let at = i % (b.len() + 1);
            b.splice(at..at, bytes.iter().copied());
            return String::from_utf8_lossy(&b).into_owned();
        }
        Mutation::DeepNesting(i, depth, array) => {
            let l = i % n;
            let nest = if *array {
                format!("deep = {}1{}", "[".repeat(*depth), "]".repeat(*depth))
            } else {
                format!("deep.{} = 1", vec!["k"; *depth].join("."))
            };
            lines.insert(l, nest);
        }
    }
    lines.join("\n")
}

fn check_located(name: &str, text: &str, e: &Error) -> Result<(), TestCaseError> {
    let d = e.diagnostics();
    prop_assert!(
        !d.is_empty(),
        "an invalid file gets at least one diagnostic: {e}"
    );
    let lines = text.lines().count().max(1) + 1;
    for x in d {
        prop_assert!(x.line >= 1 && x.col >= 1, "{x}");
        if x.file == name {
            prop_assert!(x.line <= lines, "line {} of {lines}: {x}", x.line);
        }
        prop_assert!(!x.message.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_scenario_loads_or_gets_located_errors_never_a_panic(
        which in any::<usize>(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let srcs = sources();
        let (path, text) = &srcs[which % srcs.len()];
        let mut t = text.clone();
        for m in &muts {
            t = apply(&t, m);
        }
        let base = path.parent().unwrap();
        match Scenario::parse("mutated.toml", &t, base) {
            Ok(s) => {
                // Still valid: every variant must still apply or fail cleanly.
                for v in s.variants.keys() {
                    if let Err(e) = s.with_variant(v) {
                        check_located("mutated.toml", &t, &e)?;
                    }
                }
            }
            Err(e) => check_located("mutated.toml", &t, &e)?,
        }
    }
}

#[test]
fn the_cli_exits_2_with_a_located_message_for_mutated_files() {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutated-cli");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let (_, text) = sources()
        .into_iter()
        .find(|(p, _)| p.ends_with("default.toml"))
        .unwrap();
    let cases = [
        apply(&text, &Mutation::SwapValue(3, "[]")),
        apply(
            &text,
            &Mutation::Garbage(text.find("\n[scenario]").unwrap(), vec![b'{', 0xff, b'=']),
        ),
        apply(&text, &Mutation::HugeNumber(7, "99999999999999999999")),
        apply(&text, &Mutation::DeepNesting(40, 2000, true)),
    ];
    for (i, t) in cases.iter().enumerate() {
        let f = d.join(format!("m{i}.toml"));
        std::fs::write(&f, t).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["validate", f.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        let located = first
            .strip_prefix(&format!("error: {}:", f.display()))
            .and_then(|r| {
                let mut it = r.splitn(3, ':');
                Some((
                    it.next()?.parse::<usize>().ok()?,
                    it.next()?.parse::<usize>().ok()?,
                ))
            });
        assert!(located.is_some(), "case {i}: not located: {first}");
    }
}
