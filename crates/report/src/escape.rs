//! Escaping for every user-provided string that reaches the page.
//!
//! HTML text and attribute values go through [`html`]. Text inside plots
//! goes through [`svg_label`] before it reaches plotters: plotters' SVG
//! backend entity-escapes `<`, `>`, `&` and quotes itself, so escaping here
//! as well would show `&amp;lt;` on screen; what plotters lets through are
//! control characters, which XML forbids, so those are replaced.

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    push_html(&mut out, s);
    out
}

/// Appends `s` to `out`, HTML-escaped.
pub(crate) fn push_html(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // NUL and other C0 controls are parse errors in HTML and
            // invalid in XML; tab, newline and carriage return are fine.
            c if is_forbidden_control(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Makes a label safe to hand to plotters for an SVG `<text>`: control
/// characters become U+FFFD and the label is cut to `chars_max` characters
/// (with an ellipsis) so one long label cannot cover a plot.
pub fn svg_label(s: &str, chars_max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(chars_max * 4));
    for (n, c) in s.chars().enumerate() {
        if n == chars_max {
            out.push('…');
            break;
        }
        out.push(match c {
            // One line of text: line breaks would be dropped by SVG anyway.
            '\t' | '\n' | '\r' => ' ',
            c if is_forbidden_control(c) => '\u{FFFD}',
            c => c,
        });
    }
    out
}

fn is_forbidden_control(c: char) -> bool {
    (c < ' ' && c != '\t' && c != '\n' && c != '\r') || c == '\u{7f}'
}
