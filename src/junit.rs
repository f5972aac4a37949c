//! JUnit XML for `rampart check --junit`: one test suite per scenario file,
//! one test case per assertion; a file that does not load or run is one
//! test case with an `<error>`. Each suite carries its wall time (`time`,
//! seconds), as CI dashboards expect; the assertion cases of one suite come
//! from one run and carry none of their own.

use std::fmt::Write;

use crate::Checked;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// The JUnit XML document for `results`.
pub fn render(results: &[Checked]) -> String {
    let mut body = String::new();
    let (mut tests, mut failures, mut errors) = (0usize, 0usize, 0usize);
    let mut total_secs = 0.0;
    for c in results {
        let file = c.file.display().to_string();
        let secs = c.wall.as_secs_f64();
        total_secs += secs;
        match &c.result {
            Err(e) => {
                tests += 1;
                errors += 1;
                let _ = writeln!(
                    body,
                    "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"{secs:.3}\">\n    \
                     <testcase classname=\"{0}\" name=\"load and run\">\n      \
                     <error message=\"{}\">{}</error>\n    </testcase>\n  </testsuite>",
                    esc(&file),
                    esc(e.lines().next().unwrap_or("")),
                    esc(e)
                );
            }
            Ok((s, o)) => {
                let f = o.assertions.iter().filter(|a| !a.passed).count();
                tests += o.assertions.len();
                failures += f;
                let _ = writeln!(
                    body,
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" time=\"{secs:.3}\">",
                    esc(&file),
                    o.assertions.len()
                );
                for a in &o.assertions {
                    let name = match &a.assertion.name {
                        Some(n) => format!("{n}: {}", a.assertion),
                        None => a.assertion.to_string(),
                    };
                    let _ = write!(
                        body,
                        "    <testcase classname=\"{}\" name=\"{}\"",
                        esc(&s.world.run.name),
                        esc(&name)
                    );
                    if a.passed {
                        body.push_str(" />\n");
                    } else {
                        let msg = format!(
                            "measured {}, threshold {} {}{}",
                            a.measured_text(),
                            a.assertion.op,
                            a.assertion.threshold_text,
                            a.error
                                .as_deref()
                                .map(|e| format!(": {e}"))
                                .unwrap_or_default()
                        );
                        let _ = writeln!(
                            body,
                            ">\n      <failure message=\"{}\">seed {}: {}</failure>\n    </testcase>",
                            esc(&msg),
                            s.world.run.seed,
                            esc(&msg)
                        );
                    }
                }
                body.push_str("  </testsuite>\n");
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rampart check\" tests=\"{tests}\" \
         failures=\"{failures}\" errors=\"{errors}\" time=\"{total_secs:.3}\">\n{body}</testsuites>\n"
    )
}
