//! The page frame shared by run, compare and sweep reports: head, inline
//! CSS, and small HTML helpers.

use std::fmt::Write;

use crate::escape::html;

/// The stylesheet: system font stack, no web fonts, no external files.
const CSS: &str = r#"
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif;
margin:0 auto;max-width:1000px;padding:1rem 1.25rem 3rem;color:#1b1b1b;background:#fff;line-height:1.45}
h1{font-size:1.5rem;margin:.2rem 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .6rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#555;font-size:.9rem}.meta code{font-size:.85rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.9rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-size:1.3rem;font-weight:700;padding:.6rem 1rem;border-radius:6px;margin:.8rem 0}
.verdict.pass{background:#e6f4ea;color:#135d24;border:1px solid #9bd3aa}
.verdict.fail{background:#fdecea;color:#8c1d18;border:1px solid #f0a8a2}
.verdict.none{background:#f3f3f3;color:#444;border:1px solid #ccc}
.badge{display:inline-block;font-weight:700;font-size:.8rem;padding:.05rem .45rem;border-radius:4px}
.badge.pass{background:#e6f4ea;color:#135d24}.badge.fail{background:#fdecea;color:#8c1d18}
.good{color:#135d24}.bad{color:#8c1d18}.muted{color:#777}
figure{margin:1rem 0 1.6rem}figcaption{font-size:.85rem;color:#555;margin-top:.2rem}
svg{max-width:100%;height:auto;display:block}
figure{overflow-x:auto}figure svg{min-width:640px}
.grid figure svg{min-width:480px}
.chart-title{font-weight:600;font-size:.95rem;margin:.2rem 0 .15rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(480px,100%),1fr));gap:0 1.2rem}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(380px,100%),1fr));gap:0 1.5rem;align-items:start}
table{display:block;max-width:100%;overflow-x:auto}
code{overflow-wrap:anywhere}
.small{font-size:.8rem}
.keys th,.keys td{white-space:nowrap}
.phases th{white-space:nowrap}.events td:nth-child(-n+2){white-space:nowrap}.phases code{overflow-wrap:normal}
details>summary{cursor:pointer;color:#333}
ul.quiet{font-size:.9rem;padding-left:1.2rem}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.7rem;overflow:auto;font-size:.82rem;white-space:pre}
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}
.legend i{display:inline-block;width:.9rem;height:.9rem;vertical-align:-.15rem;margin-right:.3rem;border-radius:2px}
.legend i.ln{width:1.6rem;height:0;border-radius:0;vertical-align:.3rem}
.err{color:#8c1d18}
th[aria-sort]{cursor:pointer}th[aria-sort]::after{content:" \2195";color:#aaa}
th[aria-sort=ascending]::after{content:" \2191";color:#333}th[aria-sort=descending]::after{content:" \2193";color:#333}
.scroll{overflow-x:auto;max-width:100%}
table.sweep td.n{white-space:nowrap}table.sweep td:first-child{min-width:11rem}
.why{font-size:.75rem;color:#8c1d18;margin-top:.15rem;max-width:16rem}
ul.coincident{font-size:.85rem;margin:.2rem 0 1rem;padding-left:1.2rem}
@media (max-width:640px){
table.assertions thead{display:none}
table.assertions tr{display:block;border-bottom:1px solid #e4e4e4;padding:.35rem 0}
table.assertions td{display:inline-block;border:0;padding:.1rem .5rem .1rem 0}
table.assertions td:nth-child(2){display:block}
table.assertions td[data-label]::before{content:attr(data-label) ": ";color:#777}
.keys th{white-space:normal}
}
@media print{h2{break-after:avoid}figure{break-inside:avoid}}
"#;

/// Opens the page: doctype, head with the escaped title, the stylesheet.
pub(crate) fn head(title: &str) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(s, "<title>{}</title>", html(title));
    // Nothing on this page loads from elsewhere; say so to the browser too.
    s.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    let _ = write!(s, "<style>{CSS}</style>\n</head>\n<body>\n");
    s
}

/// Closes the page, with an optional inline script.
pub(crate) fn foot(s: &mut String, script: Option<&str>) {
    if let Some(js) = script {
        let _ = writeln!(s, "<script>{js}</script>");
    }
    s.push_str("</body>\n</html>\n");
}

/// A figure holding an inline SVG and a caption (escaped).
pub(crate) fn figure(s: &mut String, svg: &str, caption: &str) {
    s.push_str("<figure>\n");
    s.push_str(svg);
    let _ = write!(
        s,
        "\n<figcaption>{}</figcaption>\n</figure>\n",
        html(caption)
    );
}

/// `#rrggbb` of a plotters colour, for HTML legends.
pub(crate) fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}
