//! The inspection policy as plain serde data: limits, decoding bounds,
//! routes, scoring and the rule set. A TOML policy file deserialises into
//! [`Policy`]; [`Policy::content_hash`] fingerprints it for drift detection.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a verdict over the threshold is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Requests at or over the inbound threshold are blocked.
    #[default]
    Blocking,
    /// Requests are scored and reported but never blocked (a shadow rollout).
    DetectionOnly,
}

/// CRS anomaly severities; the discriminant is the score a match adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Adds 2.
    Notice = 2,
    /// Adds 3.
    Warning = 3,
    /// Adds 4.
    Error = 4,
    /// Adds 5.
    Critical = 5,
}

impl Severity {
    /// The anomaly score this severity adds.
    pub const fn score(self) -> u16 {
        self as u16
    }
}

/// What kind of attack a rule detects. Also used as a bit in [`crate::ClassSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttackClass {
    /// Request limits, malformed bodies, method and content-type allow-lists.
    Protocol = 0,
    /// Evasion signals: residual encoding, NUL bytes.
    Evasion = 1,
    /// SQL injection.
    Sqli = 2,
    /// Cross-site scripting.
    Xss = 3,
    /// Path traversal and local file access.
    PathTraversal = 4,
    /// OS command injection (and template/JNDI injection leading to it).
    CommandInjection = 5,
    /// Server-side request forgery (OWASP API7).
    Ssrf = 6,
    /// Mass assignment of forbidden properties (OWASP API3).
    MassAssignment = 7,
}

/// Which parts of a request a rule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The URL path (decoded).
    Path,
    /// Query, form and JSON string values (decoded).
    Args,
    /// Query and form parameter names and JSON keys (decoded).
    ArgNames,
    /// Header values outside the policy's skip-list, and cookie values.
    Headers,
    /// Bodies that are neither JSON nor a form, scanned whole.
    RawBody,
}

/// How a rule matches a decoded value. Every variant runs in linear time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Matcher {
    /// Any of these phrases (ASCII case-insensitive) matches. Run by one
    /// shared Aho-Corasick automaton.
    Phrases {
        /// The phrases.
        phrases: Vec<String>,
    },
    /// A `regex`-crate pattern (finite automata, no backtracking). It runs
    /// only on values that contain one of `triggers` (ASCII
    /// case-insensitive); with no triggers it runs on every value.
    Regex {
        /// The pattern, `regex` syntax, matched against bytes.
        pattern: String,
        /// Literals one of which every match contains; a cheap prefilter.
        #[serde(default)]
        triggers: Vec<String>,
    },
    /// A URL whose host is loopback, link-local, private or a metadata name.
    InternalUrl,
}

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id, reported in verdicts.
    pub id: u32,
    /// Attack class.
    pub class: AttackClass,
    /// Score added on match.
    pub severity: Severity,
    /// Lowest paranoia level (1–4) at which the rule is active.
    pub paranoia: u8,
    /// What a log line says.
    pub message: String,
    /// Parts of the request the rule reads.
    pub targets: Vec<Target>,
    /// How it matches.
    pub matcher: Matcher,
}

/// Size and structure limits; each violation is a critical finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Path plus `?` plus query, in bytes.
    pub url_len_max: u32,
    /// Number of headers.
    pub header_count_max: u32,
    /// Sum of header name and value lengths.
    pub header_bytes_max: u32,
    /// Body size in bytes. Larger bodies are not scanned further.
    pub body_bytes_max: u32,
    /// JSON nesting depth.
    pub json_depth_max: u32,
    /// JSON object keys in the whole document.
    pub json_keys_max: u32,
    /// Elements in any one JSON array.
    pub json_array_len_max: u32,
    /// Query or form parameters.
    pub params_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            url_len_max: 4096,
            header_count_max: 64,
            header_bytes_max: 16 * 1024,
            body_bytes_max: 1024 * 1024,
            json_depth_max: 32,
            json_keys_max: 2048,
            json_array_len_max: 10_000,
            params_max: 256,
        }
    }
}

/// Decoding bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Decode {
    /// Passes of URL + HTML-entity + full-width decoding per value. Two
    /// undo double encoding; three leave room for entity-inside-percent.
    pub passes_max: u8,
    /// Header names (lowercase) whose values are not inspected, because
    /// their grammar is fixed and full of metacharacters (`*/*;q=0.8`).
    pub headers_skipped: Vec<String>,
}

impl Default for Decode {
    fn default() -> Self {
        Decode {
            passes_max: 3,
            headers_skipped: [
                "accept",
                "accept-encoding",
                "accept-language",
                "authorization",
                "content-length",
                "content-type",
                "host",
                "connection",
                "if-none-match",
                "traceparent",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Per-route allow-lists and field rules. The longest matching
/// `path_prefix` wins; with no match, [`Policy::default_route`] applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Path prefix, e.g. `/api/users`.
    pub path_prefix: String,
    /// Allowed methods (uppercase); empty allows any.
    pub methods: Vec<String>,
    /// Allowed media types (`application/json`), compared without
    /// parameters and case-insensitively; empty allows any.
    pub content_types: Vec<String>,
    /// JSON keys and form names a client must never send (mass assignment).
    pub forbidden_fields: Vec<String>,
    /// Parameter names whose values are base64 and are decoded before matching.
    pub base64_params: Vec<String>,
}

/// The whole inspection policy. Fields left out of a policy file take their
/// values from [`Policy::default`] (blocking, paranoia 1, the built-in rule
/// set), so `[policy.waf] mode = "detection_only"` is a whole policy.
///
/// It serialises, compares and hashes with the detection level in effect
/// (see the `Serialize` and `PartialEq` impls), so a left-out level and the
/// same level written are the same policy.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Blocking or detection-only.
    #[serde(default)]
    pub mode: Mode,
    /// Rules at or below this paranoia level count towards blocking (1–4).
    pub paranoia_level: u8,
    /// Rules up to this level run and are reported (>= `paranoia_level`).
    /// Left out, it is `paranoia_level`, as CRS's
    /// `tx.detection_paranoia_level` follows the blocking level: raising
    /// `paranoia_level` alone is a whole change.
    #[serde(default)]
    pub detection_paranoia_level: Option<u8>,
    /// Blocking score threshold (CRS default 5).
    pub inbound_threshold: u16,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Decoding.
    #[serde(default)]
    pub decode: Decode,
    /// Route used when no route's prefix matches.
    #[serde(default)]
    pub default_route: Route,
    /// Per-route settings.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Signature rules.
    pub rules: Vec<Rule>,
}

/// A policy as it compares and serialises: every field, with the detection
/// level in effect. One list of fields for both impls; the exhaustive
/// destructuring in [`Policy::view`] makes a new field a compile error here.
#[derive(PartialEq, Eq, Serialize)]
#[serde(rename = "Policy")]
struct PolicyView<'a> {
    mode: &'a Mode,
    paranoia_level: u8,
    detection_paranoia_level: u8,
    inbound_threshold: u16,
    limits: &'a Limits,
    decode: &'a Decode,
    default_route: &'a Route,
    routes: &'a [Route],
    rules: &'a [Rule],
}

impl Policy {
    fn view(&self) -> PolicyView<'_> {
        let Policy {
            mode,
            paranoia_level,
            detection_paranoia_level: _,
            inbound_threshold,
            limits,
            decode,
            default_route,
            routes,
            rules,
        } = self;
        PolicyView {
            mode,
            paranoia_level: *paranoia_level,
            detection_paranoia_level: self.detection_level(),
            inbound_threshold: *inbound_threshold,
            limits,
            decode,
            default_route,
            routes,
            rules,
        }
    }
}

impl PartialEq for Policy {
    fn eq(&self, o: &Policy) -> bool {
        self.view() == o.view()
    }
}

impl Eq for Policy {}

impl Serialize for Policy {
    /// The derived field order and names, with the detection level in
    /// effect: what a policy serialised to before that level could be left
    /// out, so bundle hashes over the serialised form did not change.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// SHA-256 over the canonical serialization of a [`Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RulesetHash(pub [u8; 32]);

impl std::fmt::Display for RulesetHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Policy {
    /// A policy at paranoia `level` with the built-in rule set.
    pub fn at_paranoia(level: u8) -> Policy {
        Policy {
            paranoia_level: level,
            ..Policy::default()
        }
    }

    /// The detection paranoia level in effect: the one set, or
    /// `paranoia_level`.
    pub fn detection_level(&self) -> u8 {
        self.detection_paranoia_level.unwrap_or(self.paranoia_level)
    }

    /// The content hash. Order-insensitive where order has no meaning (rules
    /// by id, routes by prefix, phrase lists sorted), so two instances that
    /// loaded the same policy from differently ordered files agree, and any
    /// change that can alter a verdict changes the hash.
    pub fn content_hash(&self) -> RulesetHash {
        let mut c = Canon(Vec::with_capacity(16 * 1024));
        c.str("rampart-waf-policy/v1");
        c.u64(self.mode as u64);
        c.u64(u64::from(self.paranoia_level));
        c.u64(u64::from(self.detection_level()));
        c.u64(u64::from(self.inbound_threshold));
        let l = &self.limits;
        for v in [
            l.url_len_max,
            l.header_count_max,
            l.header_bytes_max,
            l.body_bytes_max,
            l.json_depth_max,
            l.json_keys_max,
            l.json_array_len_max,
            l.params_max,
        ] {
            c.u64(u64::from(v));
        }
        c.u64(u64::from(self.decode.passes_max));
        c.sorted(&self.decode.headers_skipped);
        c.route(&self.default_route);
        let mut routes: Vec<&Route> = self.routes.iter().collect();
        routes.sort_by(|a, b| a.path_prefix.cmp(&b.path_prefix));
        c.u64(routes.len() as u64);
        for r in routes {
            c.route(r);
        }
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_by_key(|r| r.id);
        c.u64(rules.len() as u64);
        for r in rules {
            c.u64(u64::from(r.id));
            c.u64(r.class as u64);
            c.u64(r.severity as u64);
            c.u64(u64::from(r.paranoia));
            c.str(&r.message);
            let mut t: Vec<u64> = r.targets.iter().map(|t| *t as u64).collect();
            t.sort_unstable();
            t.dedup();
            c.u64(t.len() as u64);
            for x in t {
                c.u64(x);
            }
            match &r.matcher {
                Matcher::Phrases { phrases } => {
                    c.u64(0);
                    c.sorted(phrases);
                }
                Matcher::Regex { pattern, triggers } => {
                    c.u64(1);
                    c.str(pattern);
                    c.sorted(triggers);
                }
                Matcher::InternalUrl => c.u64(2),
            }
        }
        RulesetHash(Sha256::digest(&c.0).into())
    }
}

/// Length-prefixed, fixed-order encoding: unambiguous, so distinct policies
/// never share a byte string.
struct Canon(Vec<u8>);

impl Canon {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn sorted(&mut self, v: &[String]) {
        let mut v: Vec<&String> = v.iter().collect();
        v.sort();
        v.dedup();
        self.u64(v.len() as u64);
        for s in v {
            self.str(s);
        }
    }
    fn route(&mut self, r: &Route) {
        self.str(&r.path_prefix);
        self.sorted(&r.methods);
        let ct: Vec<String> = r
            .content_types
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        self.sorted(&ct);
        let ff: Vec<String> = r
            .forbidden_fields
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        self.sorted(&ff);
        self.sorted(&r.base64_params);
    }
}

impl Default for Policy {
    /// Paranoia level 1, threshold 5, blocking, the built-in rules.
    fn default() -> Self {
        Policy {
            mode: Mode::Blocking,
            paranoia_level: 1,
            detection_paranoia_level: None,
            inbound_threshold: 5,
            limits: Limits::default(),
            decode: Decode::default(),
            default_route: Route::default(),
            routes: Vec::new(),
            rules: crate::rules::builtin_rules(),
        }
    }
}
