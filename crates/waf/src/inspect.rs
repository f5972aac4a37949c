//! The compiled inspector: one pass of decoding and matching per value,
//! scored CRS-style.
//!
//! # Cost model and fast path
//!
//! [`Cost`] is defined by the straightforward implementation, kept as
//! [`Inspector::inspect_reference`]: every value is decoded, searched for
//! trigger literals by a non-overlapping search restarted one byte after
//! each match start, and every rule a trigger selects (or that has no
//! trigger) is *evaluated*: `rules_evaluated` counts it once and
//! `bytes_scanned` charges one read of the value for it. [`Inspector::inspect`]
//! computes the same verdict and the same [`Cost`] with less work:
//! * the trigger search is one walk of a flat DFA table that replays, at each
//!   match state, the match the restarted search would have returned, so the
//!   walked bytes it reports are the reference's. With `u16` states (every
//!   built-in level) the walk takes eight steps with no test and one compare
//!   of their OR, as match states are numbered from a power of two up;
//! * when two or more regex rules are selected on a value, one forward pass
//!   of a `RegexSet` over all regex rules asks whether any pattern matches;
//!   only a yes pays for the overlapping pass that says which. A rule the
//!   set answered for counts as evaluated, exactly as if its own regex ran;
//! * JSON strings the structure scan found free of escapes and of bytes a
//!   decoder could change (`%`, `&`, `$`, >= 0x80) skip the unescape and
//!   decode checks, which could not change them; the decode walk is still
//!   charged as one read of the value, as the reference's check is.
//!
//! The `fastpath` integration tests and this module's property test require
//! identical verdicts, cost included, from both paths.
//!
//! # Worst case per byte
//!
//! For a value of `n` bytes the inspector does, at most:
//! * `3 * passes_max` decoding walks (URL, entities, full-width fold), each
//!   O(1) per byte and writing at most as many bytes as it reads (a `%uXXXX`
//!   of six bytes becomes at most four); each copies the runs between the
//!   bytes it acts on whole, found by `memchr` (SIMD);
//! * one trigger DFA walk: one table step per byte (a class load, an add
//!   and a table load, plus one OR; one compare per eight bytes), plus, at
//!   a match state, a replay of at most one step per distinct trigger
//!   length ending there (at most `trigger_len_max`). The
//!   [`Cost`] it reports is that of the reference search (at most
//!   `trigger_len_max` steps per byte);
//! * one run per triggered rule: a `regex` lazy DFA is O(1) per byte once
//!   warm, and its fallback (PikeVM) is O(m) per byte for a pattern of size
//!   m; the SSRF scan is O(1) per byte. When two or more regex rules are
//!   triggered on one value, one forward pass of a `RegexSet` over all regex
//!   rules (and, only if it finds a match, one overlapping pass) answers
//!   them all: O(total pattern size) per byte on the PikeVM fallback, still
//!   linear.
//!
//! So the worst case is `O(passes_max + trigger_len_max + R)` automaton
//! steps per byte for R active rules, with no input able to cause
//! super-linear work. The JSON structure scan adds O(1) per body byte (eight
//! string bytes per word step). Each [`Verdict`] carries the counted work in
//! [`Cost`].

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::bytes;
use crate::decode;
use crate::json::{self, JsonItem, JsonLimits, JsonOutcome, StrFlags};
use crate::policy::{AttackClass, Matcher, Mode, Policy, Route, RulesetHash, Severity, Target};
use crate::request::Request;
use crate::ssrf;
use crate::work;
use crate::{PolicyError, ids};

/// Most rules a policy may hold (the per-value hit set is a fixed bitset).
pub const RULES_MAX: usize = 256;
/// Compiled size limit per regex, so a hostile policy cannot exhaust memory.
const REGEX_SIZE_LIMIT_BYTES: usize = 4 << 20;
/// How many matched rule ids a verdict lists (the count is always exact).
pub const MATCHED_IDS_MAX: usize = 8;

/// What the gateway should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Under the threshold.
    Allow,
    /// At or over the threshold, blocking mode.
    Block,
    /// At or over the threshold, detection-only mode: log, do not block.
    LogOnly,
}

/// A set of [`AttackClass`]es, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u8);

impl ClassSet {
    /// Adds a class.
    pub fn insert(&mut self, c: AttackClass) {
        self.0 |= 1 << c as u8;
    }
    /// Whether the set holds `c`.
    pub const fn contains(self, c: AttackClass) -> bool {
        self.0 & (1 << c as u8) != 0
    }
    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Work done by one inspection, for the simulator's CPU model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cost {
    /// Bytes walked by all decoders, scanners and automata (a byte walked by
    /// three automata counts three times).
    pub bytes_scanned: u64,
    /// Rule evaluations, plus one per engine check. A rule is evaluated on
    /// a value when a trigger selects it there (or it has no trigger) and it
    /// has not fired yet in this request: its regex or SSRF check answers
    /// for that value, whether it ran alone or a shared set pass answered
    /// for it. Each evaluation also charges one read of the value to
    /// `bytes_scanned`.
    pub rules_evaluated: u32,
    /// Values extracted and inspected.
    pub values_inspected: u32,
}

/// The ids of matched rules, in match order; inline, so a verdict is `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatchedIds {
    ids: [u32; MATCHED_IDS_MAX],
    len: u8,
    total: u16,
}

impl MatchedIds {
    fn push(&mut self, id: u32) {
        if usize::from(self.len) < MATCHED_IDS_MAX {
            self.ids[usize::from(self.len)] = id;
            self.len += 1;
        }
        self.total = self.total.saturating_add(1);
    }
    /// The first [`MATCHED_IDS_MAX`] ids.
    pub fn as_slice(&self) -> &[u32] {
        &self.ids[..usize::from(self.len)]
    }
    /// How many rules matched in total.
    pub const fn total(&self) -> u16 {
        self.total
    }
    /// Whether `id` is listed.
    pub fn contains(&self, id: u32) -> bool {
        self.as_slice().contains(&id)
    }
}

/// The result of one inspection: small, `Copy`, and a pure function of the
/// request and the policy, so a simulator may cache it per (request
/// template, [`RulesetHash`]).
#[must_use = "a verdict that is not acted on lets a blocked request through"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// What to do.
    pub action: Action,
    /// Anomaly score from rules at or below the blocking paranoia level.
    pub score: u16,
    /// Score from all rules that ran, up to the detection paranoia level.
    pub detection_score: u16,
    /// Classes of matched rules (blocking and detection).
    pub classes: ClassSet,
    /// Matched rule ids.
    pub matched: MatchedIds,
    /// Work done.
    pub cost: Cost,
}

impl Verdict {
    /// Whether the request is at or over the threshold (blocked or, in
    /// detection-only mode, would have been).
    pub const fn is_attack(&self) -> bool {
        !matches!(self.action, Action::Allow)
    }
}

#[derive(Clone, Copy, Default, Debug)]
struct Bits([u64; RULES_MAX / 64]);

impl Bits {
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a |= b;
        }
    }
    fn and(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a &= b;
        }
    }
    /// Clears every bit set in `o`.
    fn and_not(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
    }
    fn is_empty(&self) -> bool {
        self.0.iter().fold(0, |a, &w| a | w) == 0
    }
    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    /// The set bits, lowest first. A plain loop over the words: the
    /// `flat_map` it replaced cost a few dozen instructions per value.
    fn for_each(&self, mut f: impl FnMut(usize)) {
        for (w, &word) in self.0.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                f(w * 64 + word.trailing_zeros() as usize);
                word &= word - 1;
            }
        }
    }
}

#[derive(Debug)]
enum Kind {
    Regex(Regex),
    InternalUrl,
}

#[derive(Debug)]
struct CompiledRule {
    id: u32,
    class: AttackClass,
    severity: Severity,
    blocking: bool,
    kind: Kind,
}

#[derive(Debug)]
struct CompiledRoute {
    prefix: Vec<u8>,
    methods: Vec<String>,
    content_types: Vec<String>,
    forbidden_fields: Vec<Vec<u8>>,
    base64_params: Vec<Vec<u8>>,
}

/// A policy compiled for matching. Immutable and `Sync`: one per instance,
/// shared by every request.
#[derive(Debug)]
pub struct Inspector {
    policy: Policy,
    hash: RulesetHash,
    rules: Vec<CompiledRule>,
    triggers: AhoCorasick,
    /// The same triggers as a flat DFA table (no prefilter), walked by a
    /// hand-written loop that sees every match state once.
    trigger_table: TriggerTable,
    /// Every regex rule in one set, so a value that triggers several of
    /// them is searched once. `None` if the set exceeds its size limit
    /// (then each rule runs on its own, as the reference does).
    regex_set: Option<RegexSet>,
    /// Per rule, its index in `regex_set` (`u16::MAX` for non-regex rules).
    set_index: Vec<u16>,
    /// The rules whose matcher is a regex (the ones the set answers for).
    regex_rules: Bits,
    /// Per trigger pattern, the rules it selects (closure over containment).
    trigger_rules: Vec<Bits>,
    trigger_len_max: usize,
    /// Rules with no trigger: run on every value of their targets.
    always: Bits,
    /// Per target, the rules that read it.
    by_target: [Bits; 5],
    routes: Vec<CompiledRoute>,
    default_route: CompiledRoute,
    headers_skipped: Vec<String>,
}

const SSRF_TRIGGERS: [&str; 2] = ["//", "\\\\"];

impl Inspector {
    /// Compiles `policy`. Fails on invalid or duplicate rules.
    pub fn new(policy: Policy) -> Result<Inspector, PolicyError> {
        if !(1..=4).contains(&policy.paranoia_level) {
            return Err(PolicyError::ParanoiaOutOfRange {
                level: policy.paranoia_level,
            });
        }
        if !(policy.paranoia_level..=4).contains(&policy.detection_level()) {
            return Err(PolicyError::ParanoiaOutOfRange {
                level: policy.detection_level(),
            });
        }
        if policy.inbound_threshold == 0 {
            return Err(PolicyError::ZeroThreshold);
        }
        if policy.decode.passes_max == 0 {
            return Err(PolicyError::ZeroDecodePasses);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut rules = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut trigger_rule: Vec<u16> = Vec::new();
        let mut set_sources: Vec<(usize, String)> = Vec::new();
        let mut always = Bits::default();
        let mut by_target = [Bits::default(); 5];
        for r in &policy.rules {
            if !seen.insert(r.id) || ids::is_engine(r.id) {
                return Err(PolicyError::DuplicateRuleId { id: r.id });
            }
            if !(1..=4).contains(&r.paranoia) {
                return Err(PolicyError::RuleParanoiaOutOfRange {
                    id: r.id,
                    level: r.paranoia,
                });
            }
            if r.paranoia > policy.detection_level() {
                continue;
            }
            if rules.len() == RULES_MAX {
                return Err(PolicyError::TooManyRules { max: RULES_MAX });
            }
            let idx = rules.len();
            let idx16 = idx as u16;
            let (kind, trig): (Kind, Vec<&str>) = match &r.matcher {
                Matcher::Phrases { phrases } => {
                    if phrases.iter().all(String::is_empty) {
                        return Err(PolicyError::EmptyMatcher { id: r.id });
                    }
                    // A phrase list is an escaped, case-insensitive alternation:
                    // the trigger search below only *selects* rules, so every
                    // rule confirms its own match.
                    let alternation: Vec<String> = phrases
                        .iter()
                        .filter(|p| !p.is_empty())
                        .map(|p| regex::escape(p))
                        .collect();
                    let source = format!("(?i){}", alternation.join("|"));
                    let re = RegexBuilder::new(&source)
                        .unicode(false)
                        .size_limit(REGEX_SIZE_LIMIT_BYTES)
                        .dfa_size_limit(REGEX_SIZE_LIMIT_BYTES)
                        .build()
                        .map_err(|e| PolicyError::BadRegex {
                            id: r.id,
                            reason: e.to_string(),
                        })?;
                    set_sources.push((idx, source));
                    (
                        Kind::Regex(re),
                        phrases.iter().map(String::as_str).collect(),
                    )
                }
                Matcher::Regex { pattern, triggers } => {
                    // ASCII semantics: Unicode `\b`/`\w` make the lazy DFA give
                    // up on the first non-ASCII byte and fall back to the
                    // PikeVM, which is linear but two orders of magnitude
                    // slower. Non-ASCII look-alikes are folded by the decoder.
                    let re = RegexBuilder::new(pattern)
                        .unicode(false)
                        .size_limit(REGEX_SIZE_LIMIT_BYTES)
                        .dfa_size_limit(REGEX_SIZE_LIMIT_BYTES)
                        .build()
                        .map_err(|e| PolicyError::BadRegex {
                            id: r.id,
                            reason: e.to_string(),
                        })?;
                    set_sources.push((idx, pattern.clone()));
                    (
                        Kind::Regex(re),
                        triggers.iter().map(String::as_str).collect(),
                    )
                }
                Matcher::InternalUrl => (Kind::InternalUrl, SSRF_TRIGGERS.to_vec()),
            };
            let trig: Vec<&str> = trig.into_iter().filter(|t| !t.is_empty()).collect();
            if trig.is_empty() {
                always.set(idx);
            }
            for t in trig {
                patterns.push(t.to_owned());
                trigger_rule.push(idx16);
            }
            for t in &r.targets {
                by_target[*t as usize].set(idx);
            }
            rules.push(CompiledRule {
                id: r.id,
                class: r.class,
                severity: r.severity,
                blocking: r.paranoia <= policy.paranoia_level,
                kind,
            });
        }
        // Closure: a trigger selects the rules of every trigger containing it
        // (ASCII case-insensitively), so a longer trigger shadowed by a
        // shorter one inside it in the non-overlapping search is not lost.
        let lower: Vec<Vec<u8>> = patterns
            .iter()
            .map(|p| p.to_ascii_lowercase().into_bytes())
            .collect();
        let trigger_rules: Vec<Bits> = lower
            .iter()
            .map(|inner| {
                let mut b = Bits::default();
                for (j, outer) in lower.iter().enumerate() {
                    if memchr::memmem::find(outer, inner).is_some() {
                        b.set(usize::from(trigger_rule[j]));
                    }
                }
                b
            })
            .collect();
        let triggers = AhoCorasickBuilder::new()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| PolicyError::Automaton {
                reason: e.to_string(),
            })?;
        let trigger_dfa = aho_corasick::dfa::DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(&patterns)
            .map_err(|e| PolicyError::Automaton {
                reason: e.to_string(),
            })?;
        let trigger_table = TriggerTable::new(&trigger_dfa, &patterns, &trigger_rules)?;
        let regex_set = RegexSetBuilder::new(set_sources.iter().map(|(_, src)| src))
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT_BYTES.saturating_mul(4))
            .dfa_size_limit(REGEX_SIZE_LIMIT_BYTES.saturating_mul(4))
            .build()
            .ok();
        let mut set_index = vec![u16::MAX; rules.len()];
        let mut regex_rules = Bits::default();
        for (k, (idx, _)) in set_sources.iter().enumerate() {
            set_index[*idx] = k as u16;
            regex_rules.set(*idx);
        }
        let compile_route = |r: &Route| CompiledRoute {
            prefix: r.path_prefix.as_bytes().to_vec(),
            methods: r.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            content_types: r
                .content_types
                .iter()
                .map(|c| c.trim().to_ascii_lowercase())
                .collect(),
            forbidden_fields: r
                .forbidden_fields
                .iter()
                .map(|f| f.to_ascii_lowercase().into_bytes())
                .collect(),
            base64_params: r
                .base64_params
                .iter()
                .map(|f| f.as_bytes().to_vec())
                .collect(),
        };
        let mut routes: Vec<CompiledRoute> = policy.routes.iter().map(compile_route).collect();
        // Longest prefix first; ties cannot change the result because equal
        // prefixes are rejected.
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = routes.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(PolicyError::DuplicateRoute {
                prefix: String::from_utf8_lossy(&w[0].prefix).into_owned(),
            });
        }
        let default_route = compile_route(&policy.default_route);
        let headers_skipped = policy
            .decode
            .headers_skipped
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Ok(Inspector {
            hash: policy.content_hash(),
            policy,
            rules,
            triggers,
            trigger_table,
            regex_set,
            set_index,
            regex_rules,
            trigger_rules,
            trigger_len_max: patterns.iter().map(String::len).max().unwrap_or(0),
            always,
            by_target,
            routes,
            default_route,
            headers_skipped,
        })
    }

    /// The content hash of the policy this inspector was built from.
    pub fn ruleset_hash(&self) -> RulesetHash {
        self.hash
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Length of the longest trigger literal: the trigger search re-reads at
    /// most this many bytes per trigger match, a factor in the per-byte bound.
    pub fn trigger_len_max(&self) -> usize {
        self.trigger_len_max
    }

    /// Number of compiled (active) signature rules.
    pub fn active_rules(&self) -> usize {
        self.rules.len()
    }

    /// Inspects one request. Deterministic: the same request and policy
    /// always give the same verdict, cost included.
    pub fn inspect(&self, req: &Request<'_>) -> Verdict {
        self.inspect_on(req, SearchPath::Fast)
    }

    /// Inspects with the straightforward implementation the fast paths
    /// replaced. Same verdict as [`Inspector::inspect`], cost included,
    /// only slower: it exists as the oracle of the differential tests and
    /// is not meant for production use.
    #[doc(hidden)]
    pub fn inspect_reference(&self, req: &Request<'_>) -> Verdict {
        self.inspect_on(req, SearchPath::Reference)
    }

    fn inspect_on(&self, req: &Request<'_>, path: SearchPath) -> Verdict {
        let mut acc = Acc {
            path,
            ..Acc::default()
        };
        let limits = &self.policy.limits;
        let route = self
            .routes
            .iter()
            .find(|r| req.path.starts_with(&r.prefix))
            .unwrap_or(&self.default_route);

        // Engine checks: limits and allow-lists.
        acc.cost.rules_evaluated += 6;
        let url_len = req.path.len()
            + if req.query.is_empty() {
                0
            } else {
                1 + req.query.len()
            };
        if url_len > limits.url_len_max as usize {
            acc.engine(ids::URL_TOO_LONG, AttackClass::Protocol);
        }
        if req.headers.len() > limits.header_count_max as usize {
            acc.engine(ids::TOO_MANY_HEADERS, AttackClass::Protocol);
        }
        let header_bytes: usize = req
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum();
        if header_bytes > limits.header_bytes_max as usize {
            acc.engine(ids::HEADERS_TOO_LARGE, AttackClass::Protocol);
        }
        let body_too_large = req.body.len() > limits.body_bytes_max as usize;
        if body_too_large {
            acc.engine(ids::BODY_TOO_LARGE, AttackClass::Protocol);
        }
        if !route.methods.is_empty()
            && !route
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(req.method))
        {
            acc.engine(ids::METHOD_NOT_ALLOWED, AttackClass::Protocol);
        }
        let media_type = req
            .content_type
            .map(|ct| ct.split(';').next().unwrap_or("").trim())
            .unwrap_or("");
        if !route.content_types.is_empty()
            && !req.body.is_empty()
            && !route
                .content_types
                .iter()
                .any(|c| c.eq_ignore_ascii_case(media_type))
        {
            acc.engine(ids::CONTENT_TYPE_NOT_ALLOWED, AttackClass::Protocol);
        }

        // Path.
        if url_len <= limits.url_len_max as usize {
            self.value(Target::Path, req.path, false, false, &mut acc);
            self.params(req.query, route, &mut acc);
        }

        // Headers.
        if header_bytes <= limits.header_bytes_max as usize {
            for h in req.headers.iter().take(limits.header_count_max as usize) {
                let name = h.name;
                if self
                    .headers_skipped
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(name))
                {
                    continue;
                }
                if name.eq_ignore_ascii_case("cookie") {
                    // Splitting reads the whole header, as for a query
                    // string; a header of only separators and empty values
                    // would otherwise cost nothing.
                    acc.cost.bytes_scanned += h.value.len() as u64;
                    for pair in bytes::split(h.value, b';') {
                        let v = match bytes::find(b'=', pair) {
                            Some(eq) => &pair[eq + 1..],
                            None => pair,
                        };
                        self.value(Target::Headers, v, true, false, &mut acc);
                    }
                } else {
                    self.value(Target::Headers, h.value, false, false, &mut acc);
                }
            }
        }

        // Body.
        if !body_too_large && !req.body.is_empty() {
            let mt = media_type.as_bytes();
            if mt.eq_ignore_ascii_case(b"application/json")
                || (mt.ends_with(b"+json") && mt.len() > 5)
            {
                self.json_body(req.body, route, &mut acc);
            } else if mt.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
                self.params(req.body, route, &mut acc);
            } else {
                self.value(Target::RawBody, req.body, false, false, &mut acc);
            }
        }
        acc.finish(&self.policy)
    }

    fn params(&self, s: &[u8], route: &CompiledRoute, acc: &mut Acc) {
        if s.is_empty() {
            return;
        }
        acc.cost.bytes_scanned += s.len() as u64;
        let mut count = 0u32;
        for pair in bytes::split(s, b'&') {
            if pair.is_empty() {
                continue;
            }
            count += 1;
            if count > self.policy.limits.params_max {
                acc.engine(ids::TOO_MANY_PARAMS, AttackClass::Protocol);
                return;
            }
            let (name, value) = match bytes::find(b'=', pair) {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[..0]),
            };
            let name_dec = decode::normalize(name, true, self.policy.decode.passes_max);
            acc.cost.bytes_scanned += name_dec.bytes_scanned;
            self.check_field_name(&name_dec.bytes, route, acc);
            let b64 = route
                .base64_params
                .iter()
                .any(|p| p.as_slice() == &*name_dec.bytes);
            self.value(Target::ArgNames, name, true, false, acc);
            self.value(Target::Args, value, true, b64, acc);
        }
    }

    fn json_body<'a>(&self, body: &'a [u8], route: &CompiledRoute, acc: &mut Acc) {
        let l = &self.policy.limits;
        let limits = JsonLimits {
            depth_max: l.json_depth_max,
            keys_max: l.json_keys_max,
            array_len_max: l.json_array_len_max,
        };
        acc.cost.bytes_scanned += body.len() as u64;
        acc.cost.rules_evaluated += 1;
        // The key most recently seen decides whether the next string is base64.
        let mut last_key_b64 = false;
        let mut seen = Seen::new();
        // The scanner's flags say when a string has no escape and nothing a
        // decoder could change, so neither unescaping nor decoding needs to
        // look at it again (the reference path ignores them).
        let fast = acc.path == SearchPath::Fast;
        let unescape = |raw: &'a [u8], f: StrFlags| -> Cow<'a, [u8]> {
            if fast && !f.escaped {
                Cow::Borrowed(raw)
            } else {
                decode::json_unescape(raw)
            }
        };
        let outcome = json::scan(body, limits, |item| match item {
            JsonItem::Key(raw, f) => {
                // Arrays of objects repeat their keys; an identical key
                // cannot fire a rule the first copy did not, so it is
                // inspected once per request.
                let first = seen.insert(raw, 0);
                if first || !route.base64_params.is_empty() {
                    let key = unescape(raw, f);
                    last_key_b64 = route.base64_params.iter().any(|p| p.as_slice() == &*key);
                    if first {
                        self.check_field_name(&key, route, acc);
                        let plain = fast && !f.escaped && !f.maybe_encoded;
                        self.value_decoded_json(Target::ArgNames, key, false, plain, acc);
                    }
                }
            }
            JsonItem::Str(raw, f) => {
                if seen.insert(raw, 1 + u8::from(last_key_b64)) {
                    let v = unescape(raw, f);
                    let plain = fast && !f.escaped && !f.maybe_encoded;
                    self.value_decoded_json(Target::Args, v, last_key_b64, plain, acc);
                }
                last_key_b64 = false;
            }
        });
        let id = match outcome {
            JsonOutcome::Ok => return,
            JsonOutcome::Malformed => ids::MALFORMED_BODY,
            JsonOutcome::DepthExceeded => ids::JSON_TOO_DEEP,
            JsonOutcome::KeysExceeded => ids::JSON_TOO_MANY_KEYS,
            JsonOutcome::ArrayTooLong => ids::JSON_ARRAY_TOO_LONG,
        };
        acc.engine(id, AttackClass::Protocol);
    }

    fn check_field_name(&self, name: &[u8], route: &CompiledRoute, acc: &mut Acc) {
        if route.forbidden_fields.is_empty() {
            return;
        }
        acc.cost.rules_evaluated += 1;
        if route
            .forbidden_fields
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
        {
            acc.engine(ids::MASS_ASSIGNMENT, AttackClass::MassAssignment);
        }
    }

    /// `plain`: the caller knows no decoder can change `v` (see
    /// [`StrFlags`]), so the decoding walk is skipped; its cost is charged
    /// as the walk would have been (one read of `v`).
    fn value_decoded_json(
        &self,
        target: Target,
        v: Cow<'_, [u8]>,
        b64: bool,
        plain: bool,
        acc: &mut Acc,
    ) {
        self.value_known(target, &v, false, b64, plain, acc);
    }

    fn value(&self, target: Target, raw: &[u8], form: bool, b64: bool, acc: &mut Acc) {
        self.value_known(target, raw, form, b64, false, acc);
    }

    fn value_known(
        &self,
        target: Target,
        raw: &[u8],
        form: bool,
        b64: bool,
        plain: bool,
        acc: &mut Acc,
    ) {
        if raw.is_empty() {
            return;
        }
        let n = if plain {
            decode::Normalized {
                bytes: Cow::Borrowed(raw),
                residual: false,
                bytes_scanned: raw.len() as u64,
            }
        } else {
            decode::normalize(raw, form, self.policy.decode.passes_max)
        };
        acc.cost.bytes_scanned += n.bytes_scanned;
        if n.residual {
            acc.engine(ids::RESIDUAL_ENCODING, AttackClass::Evasion);
        }
        self.match_value(target, &n.bytes, acc);
        if !b64 {
            return;
        }
        // The attempt reads the value whether or not it decodes.
        acc.cost.bytes_scanned += n.bytes.len() as u64;
        if let Some(decoded) = decode::base64_value(&n.bytes) {
            let n2 = decode::normalize(&decoded, false, self.policy.decode.passes_max);
            acc.cost.bytes_scanned += n2.bytes_scanned;
            self.match_value(target, &n2.bytes, acc);
        }
    }

    /// The rules selected by triggers in `v`, and the bytes the reference
    /// search walks (the figure [`Cost::bytes_scanned`] reports).
    ///
    /// One DFA pass that sees every occurrence replaces the reference's
    /// restarted searches and yields the same result. Rules: the reference's
    /// selection is the union of the closures of the triggers it finds, and
    /// for every occurrence `q` it finds one inside `q` (whose closure covers
    /// `q`'s), so the union over *all* occurrences is the same set. Work:
    /// each reference search from `pos` returns, of the occurrences starting
    /// at or after `pos`, the one ending first (the longest of those ending
    /// there); [`Inspector::replay`] picks exactly that one at each match
    /// state, so the walked bytes are replayed exactly. The `fastpath`
    /// integration tests compare whole verdicts, cost included, with
    /// [`Inspector::inspect_reference`] on the corpora, mutated corpora and
    /// arbitrary bytes.
    fn trigger_hits(&self, v: &[u8]) -> (Bits, u64) {
        self.trigger_hits_on(v, self.trigger_table.narrow.as_ref())
    }

    /// [`Inspector::trigger_hits`] over the `u16` table `narrow`, or over
    /// the `u32` one when `None` (policies too large for `u16` states; the
    /// tests walk both).
    fn trigger_hits_on(&self, v: &[u8], narrow: Option<&Narrow>) -> (Bits, u64) {
        if self.trigger_rules.is_empty() {
            // No triggers: the reference's single search finds nothing and
            // walks the whole value.
            return (self.always, v.len() as u64);
        }
        work::touch(v.len());
        let t = &self.trigger_table;
        let mut walk = Walk {
            hits: self.always,
            walked: 0,
            pos: 0,
        };
        match narrow {
            Some(n) => t.walk_narrow(n, v, &mut walk),
            None => {
                let mut sid = t.start;
                for (i, &b) in v.iter().enumerate() {
                    sid = t.trans[(sid + u32::from(t.classes[usize::from(b)])) as usize];
                    if sid < t.match_limit {
                        t.replay(&mut walk, i + 1, sid);
                    }
                }
            }
        }
        if walk.pos < v.len() {
            walk.walked += (v.len() - walk.pos) as u64;
        }
        (walk.hits, walk.walked)
    }

    /// The original search: one prefiltered non-overlapping search per
    /// match, restarted one byte after each match start. Kept as the oracle
    /// for [`Inspector::trigger_hits`].
    fn trigger_hits_reference(&self, v: &[u8]) -> (Bits, u64) {
        let mut hits = self.always;
        let mut walked = 0u64;
        // Non-overlapping search restarted one byte after each match start
        // finds, at every position, the earliest-ending trigger. A trigger
        // hidden by a shorter one inside it is covered by the closure built
        // in `new`: each trigger selects the rules of every trigger that
        // contains it. This keeps the prefiltered (SIMD) search instead of
        // the byte-at-a-time overlapping one; over-selection costs time only.
        let mut pos = 0;
        while pos < v.len() {
            let Some(m) = self
                .triggers
                .find(aho_corasick::Input::new(v).span(pos..v.len()))
            else {
                work::touch(v.len() - pos);
                walked += (v.len() - pos) as u64;
                break;
            };
            work::touch(m.end() - pos);
            // The walk covered pos..end; restarting at start + 1 re-reads at
            // most `trigger_len_max - 1` bytes per match.
            walked += (m.end() - pos) as u64;
            hits.or(&self.trigger_rules[m.pattern().as_usize()]);
            pos = m.start() + 1;
        }
        (hits, walked)
    }

    fn match_value(&self, target: Target, v: &[u8], acc: &mut Acc) {
        acc.cost.values_inspected += 1;
        let (mut live, walked) = match acc.path {
            SearchPath::Fast => self.trigger_hits(v),
            SearchPath::Reference => self.trigger_hits_reference(v),
        };
        acc.cost.bytes_scanned += walked;
        // The rules evaluated here: selected, reading this target, and not
        // fired yet in this request. Each is charged one evaluation and one
        // read of the value, however its answer is obtained. A rule firing
        // below only marks itself, so counting them up front is the same
        // as counting in the loop.
        live.and(&self.by_target[target as usize]);
        live.and_not(&acc.fired);
        if live.is_empty() {
            return;
        }
        let evaluated = live.count();
        acc.cost.rules_evaluated += evaluated;
        acc.cost.bytes_scanned += u64::from(evaluated) * v.len() as u64;
        // Several regex rules to run on one value: one pass of the set
        // answers them all. Most values are clean, so the set first asks
        // only "does any pattern match?" (a forward search that stops at
        // the first match and keeps no per-pattern state); only a yes pays
        // for the overlapping search that says which. Both answer exactly
        // what each rule's own `is_match` would: no set pattern matching
        // means no triggered rule matches. The cost still counts one walk
        // per rule, as the model the simulator charges is per rule.
        let set_answer = match (&self.regex_set, acc.path) {
            (Some(set), SearchPath::Fast)
                if {
                    let mut regex_live = live;
                    regex_live.and(&self.regex_rules);
                    regex_live.count() >= 2
                } =>
            {
                work::touch(v.len());
                if set.is_match(v) {
                    work::touch(v.len());
                    SetAnswer::Which(set.matches(v))
                } else {
                    SetAnswer::NoneMatch
                }
            }
            _ => SetAnswer::NotAsked,
        };
        live.for_each(|r| {
            let rule = &self.rules[r];
            let matched = match &rule.kind {
                Kind::Regex(re) => match &set_answer {
                    SetAnswer::Which(m) => m.matched(usize::from(self.set_index[r])),
                    SetAnswer::NoneMatch => false,
                    SetAnswer::NotAsked => {
                        work::touch(v.len());
                        re.is_match(v)
                    }
                },
                Kind::InternalUrl => ssrf::has_internal_url(v),
            };
            if matched {
                acc.fired.set(r);
                acc.rule(rule);
            }
        });
    }
}

/// Values already inspected in this request, compared byte for byte (the
/// fingerprint only skips unequal candidates quickly, so a crafted collision
/// cannot hide a value). It holds at most one value per fingerprint, so a
/// lookup compares at most one value in full: with a chain of values that
/// share a fingerprint, each lookup would compare the whole chain, up to
/// `SEEN_MAX` full comparisons per value. Bounded: past the cap, and for a
/// value whose fingerprint a different value holds, values are simply
/// inspected again.
struct Seen<'a> {
    entries: Vec<SeenEntry<'a>>,
    /// Open-addressing index into `entries` by fingerprint (0 = empty,
    /// else index + 1). Twice `SEEN_MAX` slots, so a probe always ends.
    slots: [u8; SEEN_SLOTS],
}

const SEEN_MAX: usize = 64;
const SEEN_SLOTS: usize = 2 * SEEN_MAX;

impl<'a> Seen<'a> {
    fn new() -> Seen<'a> {
        Seen {
            // Sized once: growing 4, 8, … 64 cost five reallocations per body.
            entries: Vec::with_capacity(SEEN_MAX),
            slots: [0; SEEN_SLOTS],
        }
    }

    /// Records `(v, tag)`; returns whether it is new (or the memo is full,
    /// or a different value holds its fingerprint).
    #[inline]
    fn insert(&mut self, v: &'a [u8], tag: u8) -> bool {
        // A fingerprint from the length and the first and last eight bytes:
        // O(1) per value, and enough to skip most unequal candidates. Equal
        // values have equal fingerprints, so they probe the same slots.
        // Whole-word loads where the value allows (a variable-length copy
        // compiles to a `memcpy` call per word).
        let word = |b: &[u8]| {
            if let Some(c) = b.first_chunk::<8>() {
                u64::from_le_bytes(*c)
            } else if let (Some(a), Some(z)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
                u64::from(u32::from_le_bytes(*a)) | u64::from(u32::from_le_bytes(*z)) << 32
            } else {
                b.iter().fold(0u64, |w, &x| (w << 8) | u64::from(x))
            }
        };
        let k = v.len().min(8);
        let (first, last) = (word(&v[..k]), word(&v[v.len() - k..]));
        let h =
            ((v.len() as u64) ^ first.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ last.rotate_left(29))
                .wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        // Up to 16 bytes, the length and the two words cover every byte
        // (the words overlap below 16; below 8 they are the bytes
        // themselves), so comparing them is comparing the values, without
        // a `memcmp` call.
        let short = v.len() <= 16;
        let mut i = (h >> 57) as usize % SEEN_SLOTS;
        loop {
            match self.slots[i] {
                0 => break,
                e => {
                    let en = &self.entries[usize::from(e) - 1];
                    if en.hash == h
                        && en.tag == tag
                        && en.value.len() == v.len()
                        && en.first == first
                        && en.last == last
                    {
                        // The one value with this fingerprint: `v` was seen
                        // exactly when it is this value. If not, `v` is not
                        // recorded (see [`Seen`]).
                        let equal = short || {
                            work::touch(v.len());
                            en.value == v
                        };
                        return !equal;
                    }
                }
            }
            i = (i + 1) % SEEN_SLOTS;
        }
        if self.entries.len() < SEEN_MAX {
            self.entries.push(SeenEntry {
                hash: h,
                tag,
                value: v,
                first,
                last,
            });
            self.slots[i] = self.entries.len() as u8;
        }
        true
    }
}

/// One value a [`Seen`] memo holds, with its fingerprint and end words.
struct SeenEntry<'a> {
    hash: u64,
    tag: u8,
    value: &'a [u8],
    first: u64,
    last: u64,
}

/// Entries of the `u16` trigger table: any `u16` state plus any `u8`
/// class is a valid index, so the walk needs no bounds check.
const NARROW_LEN: usize = (1 << 16) + 256;

/// The trigger DFA with `u16` states in a fixed-size array, renumbered so
/// that match states are exactly the states at or above `match_base`, a
/// power of two: the OR of several states is at or above it exactly when
/// one of them is a match state, so a block of bytes is walked with one
/// test at its end. 128.5 KiB whatever the policy, where the `u32` table
/// of the built-in rules takes 114 KB (PL1) to 151 KB (PL4).
#[derive(Debug)]
struct Narrow {
    /// `trans[state + class]`: the next state, premultiplied; the tail
    /// past the last state is padding.
    trans: Box<[u16; NARROW_LEN]>,
    start: u16,
    /// Non-match states lie below it, match states at or above it.
    match_base: u16,
    /// Per `state - match_base` of a match state, its index into
    /// `match_hits` and `match_lens` (other entries are unused).
    match_index: Vec<u16>,
}

/// The trigger DFA as one flat table, so the per-byte step is two loads,
/// an add and a compare (the `u32` walk; see [`Narrow`] for the `u16` one).
///
/// Built from aho-corasick's unanchored DFA by visiting every reachable
/// state: byte classes fold ASCII case and merge every byte that occurs in
/// no trigger (the construction checks that each class really behaves as
/// one byte, and falls back to one class per byte otherwise), state ids are
/// premultiplied by the class count, and match states are numbered first so
/// "is this a match state?" is one comparison.
#[derive(Debug)]
struct TriggerTable {
    /// Byte to class.
    classes: [u8; 256],
    /// `trans[state + class]`: the next state, premultiplied. Empty when
    /// `narrow` is built (outside unit tests): only walked without it.
    trans: Vec<u32>,
    /// The same automaton with `u16` states, when they fit (they do at
    /// every built-in level; the unit tests check); `None` for larger
    /// policies.
    narrow: Option<Narrow>,
    /// The unanchored start state, premultiplied.
    start: u32,
    /// States below this (premultiplied) are match states.
    match_limit: u32,
    /// Per premultiplied match state, its index into `match_hits` and
    /// `match_lens` (entries for non-multiples of the stride are unused).
    match_index: Vec<u16>,
    /// Per match state: the union of the rules its triggers select.
    match_hits: Vec<Bits>,
    /// Per match state: the distinct lengths of the triggers ending there,
    /// longest first (so their starts come in increasing order).
    match_lens: Vec<Box<[u16]>>,
}

impl TriggerTable {
    fn new(
        dfa: &aho_corasick::dfa::DFA,
        patterns: &[String],
        trigger_rules: &[Bits],
    ) -> Result<TriggerTable, PolicyError> {
        let mut folded = [0u8; 256];
        let mut next_class = 1u16;
        for p in patterns {
            for &b in p.as_bytes() {
                let l = usize::from(b.to_ascii_lowercase());
                if folded[l] == 0 {
                    folded[l] = next_class as u8;
                    next_class += 1;
                    if next_class > 255 {
                        break;
                    }
                }
            }
        }
        if next_class <= 255 {
            let mut classes = [0u8; 256];
            for (b, c) in classes.iter_mut().enumerate() {
                *c = folded[usize::from((b as u8).to_ascii_lowercase())];
            }
            if let Some(t) =
                Self::with_classes(dfa, classes, usize::from(next_class), trigger_rules)?
            {
                return Ok(t);
            }
        }
        let mut identity = [0u8; 256];
        for (b, c) in identity.iter_mut().enumerate() {
            *c = b as u8;
        }
        Self::with_classes(dfa, identity, 256, trigger_rules)?.ok_or_else(|| {
            PolicyError::Automaton {
                reason: "trigger table: one class per byte still conflicts".into(),
            }
        })
    }

    /// `Ok(None)` when two bytes of one class lead somewhere different.
    fn with_classes(
        dfa: &aho_corasick::dfa::DFA,
        classes: [u8; 256],
        stride: usize,
        trigger_rules: &[Bits],
    ) -> Result<Option<TriggerTable>, PolicyError> {
        use aho_corasick::Anchored;
        use aho_corasick::automaton::{Automaton as _, StateID};
        use std::collections::{BTreeMap, VecDeque};
        let automaton = |e: aho_corasick::MatchError| PolicyError::Automaton {
            reason: e.to_string(),
        };
        let start = dfa.start_state(Anchored::No).map_err(automaton)?;
        // Every state reachable from the start, in breadth-first order.
        let mut order: Vec<StateID> = vec![start];
        let mut seen: BTreeMap<StateID, ()> = BTreeMap::from([(start, ())]);
        let mut queue = VecDeque::from([start]);
        while let Some(sid) = queue.pop_front() {
            for b in 0..=255u8 {
                let t = dfa.next_state(Anchored::No, sid, b);
                if seen.insert(t, ()).is_none() {
                    order.push(t);
                    queue.push_back(t);
                }
            }
        }
        // Match states first.
        order.sort_by_key(|&sid| !dfa.is_match(sid));
        let n_match = order.iter().filter(|&&sid| dfa.is_match(sid)).count();
        let premultiplied = |k: usize| -> Result<u32, PolicyError> {
            u32::try_from(k * stride).map_err(|_| PolicyError::Automaton {
                reason: "trigger table too large".into(),
            })
        };
        let index: BTreeMap<StateID, usize> =
            order.iter().enumerate().map(|(k, &sid)| (sid, k)).collect();
        let mut trans = vec![u32::MAX; order.len() * stride];
        for (k, &sid) in order.iter().enumerate() {
            for b in 0..=255u8 {
                let to = premultiplied(index[&dfa.next_state(Anchored::No, sid, b)])?;
                let slot = &mut trans[k * stride + usize::from(classes[usize::from(b)])];
                if *slot != u32::MAX && *slot != to {
                    return Ok(None);
                }
                *slot = to;
            }
        }
        let mut match_index = vec![0u16; n_match * stride];
        let mut match_hits = Vec::with_capacity(n_match);
        let mut match_lens = Vec::with_capacity(n_match);
        for (k, &sid) in order[..n_match].iter().enumerate() {
            match_index[k * stride] = u16::try_from(k).map_err(|_| PolicyError::Automaton {
                reason: "too many trigger match states".into(),
            })?;
            let mut hits = Bits::default();
            let mut lens: Vec<u16> = Vec::new();
            for m in 0..dfa.match_len(sid) {
                let pid = dfa.match_pattern(sid, m);
                hits.or(&trigger_rules[pid.as_usize()]);
                lens.push(u16::try_from(dfa.pattern_len(pid)).unwrap_or(u16::MAX));
            }
            lens.sort_unstable_by(|a, b| b.cmp(a));
            lens.dedup();
            match_hits.push(hits);
            match_lens.push(lens.into_boxed_slice());
        }
        let narrow = Narrow::new(&trans, stride, n_match, premultiplied(index[&start])?);
        // With a `u16` table the `u32` one is never walked, so it is not
        // kept (one table per inspector, not two), except in this crate's
        // unit tests, which walk both against the reference.
        let trans = if narrow.is_some() && !cfg!(test) {
            Vec::new()
        } else {
            trans
        };
        Ok(Some(TriggerTable {
            classes,
            narrow,
            trans,
            start: premultiplied(index[&start])?,
            match_limit: premultiplied(n_match)?,
            match_index,
            match_hits,
            match_lens,
        }))
    }

    /// The walk over the `u16` table, eight bytes per step: the eight
    /// next states are computed with no test, and one comparison of their
    /// OR says whether any is a match state (rare on clean input); only
    /// then are they looked at one by one, in order, and replayed.
    #[inline]
    fn walk_narrow(&self, n: &Narrow, v: &[u8], walk: &mut Walk) {
        let cls = &self.classes;
        let trans = &*n.trans;
        // A `u16` state plus a `u8` class is always below `NARROW_LEN`.
        let step = |s: u16, b: u8| trans[usize::from(s) + usize::from(cls[usize::from(b)])];
        let base = n.match_base;
        let mut sid = n.start;
        let (blocks, rest) = v.as_chunks::<8>();
        for (k, blk) in blocks.iter().enumerate() {
            let s1 = step(sid, blk[0]);
            let s2 = step(s1, blk[1]);
            let s3 = step(s2, blk[2]);
            let s4 = step(s3, blk[3]);
            let s5 = step(s4, blk[4]);
            let s6 = step(s5, blk[5]);
            let s7 = step(s6, blk[6]);
            let s8 = step(s7, blk[7]);
            sid = s8;
            if (s1 | s2 | s3 | s4 | s5 | s6 | s7 | s8) >= base {
                for (j, s) in [s1, s2, s3, s4, s5, s6, s7, s8].into_iter().enumerate() {
                    if s >= base {
                        self.replay_narrow(n, walk, 8 * k + j + 1, s);
                    }
                }
            }
        }
        let offset = blocks.len() * 8;
        for (j, &b) in rest.iter().enumerate() {
            sid = step(sid, b);
            if sid >= base {
                self.replay_narrow(n, walk, offset + j + 1, sid);
            }
        }
    }

    /// [`TriggerTable::replay`] for match state `sid` of `n`. Out of line:
    /// inlined into the block loop it cost ~900 more instructions per clean
    /// request (register pressure in the eight-step loop).
    #[inline(never)]
    fn replay_narrow(&self, n: &Narrow, walk: &mut Walk, end: usize, sid: u16) {
        let k = usize::from(n.match_index[usize::from(sid - n.match_base)]);
        self.replay_match(walk, end, k);
    }

    /// Folds match state `sid`, reached at byte offset `end`, into `walk`:
    /// every trigger ending here selects its rules, and the reference's
    /// restarts that end here are replayed. From `pos` the reference finds
    /// the longest occurrence ending here that starts at or after `pos`,
    /// then restarts one byte after its start; taking the starts in
    /// increasing order does exactly that, repeatedly.
    #[inline]
    fn replay(&self, walk: &mut Walk, end: usize, sid: u32) {
        self.replay_match(walk, end, usize::from(self.match_index[sid as usize]));
    }

    /// [`TriggerTable::replay`] for match state number `k`.
    #[inline]
    fn replay_match(&self, walk: &mut Walk, end: usize, k: usize) {
        walk.hits.or(&self.match_hits[k]);
        for &len in self.match_lens[k].iter() {
            // A trigger ending at `end` was read whole from offset 0, so
            // it is never longer than `end`.
            let Some(start) = end.checked_sub(usize::from(len)) else {
                continue;
            };
            if start >= walk.pos {
                walk.walked += (end - walk.pos) as u64;
                walk.pos = start + 1;
            }
        }
    }
}

impl Narrow {
    /// Renumbers the `u32` table (match states first, premultiplied by
    /// `stride`): non-match states from 0, match states from the next power
    /// of two. `None` when that does not fit `u16`.
    fn new(trans: &[u32], stride: usize, n_match: usize, start: u32) -> Option<Narrow> {
        let n = trans.len() / stride;
        let match_base = ((n - n_match) * stride).next_power_of_two();
        // Every state id, and `match_base` itself, must fit `u16`.
        if match_base >= 1 << 16 || match_base + n_match * stride > 1 << 16 {
            return None;
        }
        let renumber = |old: u32| -> u16 {
            let k = old as usize / stride;
            let new = if k < n_match {
                match_base + k * stride
            } else {
                (k - n_match) * stride
            };
            // Below 1 << 16, checked above.
            new as u16
        };
        let mut table: Box<[u16; NARROW_LEN]> =
            vec![0u16; NARROW_LEN].into_boxed_slice().try_into().ok()?;
        for k in 0..n {
            let from = usize::from(renumber((k * stride) as u32));
            for c in 0..stride {
                table[from + c] = renumber(trans[k * stride + c]);
            }
        }
        let mut match_index = vec![0u16; n_match * stride];
        for k in 0..n_match {
            // At most 64 Ki / stride match states, so `k` fits.
            match_index[k * stride] = k as u16;
        }
        Some(Narrow {
            trans: table,
            start: renumber(start),
            match_base: match_base as u16,
            match_index,
        })
    }
}

/// What the regex set said about one value.
enum SetAnswer {
    /// The set was not run: each rule runs its own regex.
    NotAsked,
    /// No pattern of the set matches anywhere in the value.
    NoneMatch,
    /// Some pattern matches: exactly these.
    Which(regex::bytes::SetMatches),
}

/// The state of a replayed reference trigger search.
struct Walk {
    hits: Bits,
    walked: u64,
    pos: usize,
}

/// Which implementation of the per-value work runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SearchPath {
    #[default]
    Fast,
    Reference,
}

#[derive(Default)]
struct Acc {
    path: SearchPath,
    score: u16,
    detection_score: u16,
    classes: ClassSet,
    matched: MatchedIds,
    fired: Bits,
    engine_fired: u16,
    cost: Cost,
}

impl Acc {
    fn rule(&mut self, r: &CompiledRule) {
        let s = r.severity.score();
        if r.blocking {
            self.score = self.score.saturating_add(s);
        }
        self.detection_score = self.detection_score.saturating_add(s);
        self.classes.insert(r.class);
        self.matched.push(r.id);
    }

    /// Engine findings are critical, paranoia 1, and fire once per request.
    fn engine(&mut self, id: u32, class: AttackClass) {
        let bit = 1u16 << ids::engine_index(id);
        if self.engine_fired & bit != 0 {
            return;
        }
        self.engine_fired |= bit;
        let s = ids::engine_severity(id).score();
        self.score = self.score.saturating_add(s);
        self.detection_score = self.detection_score.saturating_add(s);
        self.classes.insert(class);
        self.matched.push(id);
    }

    fn finish(self, policy: &Policy) -> Verdict {
        let over = self.score >= policy.inbound_threshold;
        let action = match (over, policy.mode) {
            (false, _) => Action::Allow,
            (true, Mode::Blocking) => Action::Block,
            (true, Mode::DetectionOnly) => Action::LogOnly,
        };
        Verdict {
            action,
            score: self.score,
            detection_score: self.detection_score,
            classes: self.classes,
            matched: self.matched,
            cost: self.cost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trigger fragments, case variants and bytes that share no class with
    /// them, so generated values are dense in overlapping occurrences.
    const PIECES: &[&[u8]] = &[
        b"'",
        b"\"",
        b"`",
        b";",
        b"|",
        b"&",
        b"&&",
        b"$(",
        b"${",
        b"{{",
        b"{%",
        b"..",
        b"//",
        b"\\\\",
        b"/*",
        b"/*!",
        b"sh",
        b"SH",
        b"nc",
        b"select",
        b"SeLeCt",
        b"union",
        b"like",
        b"t :",
        b"t\t:",
        b"exp",
        b"expression",
        b"/etc/",
        b"127.",
        b"localhost",
        b"data",
        b"script",
        b"a",
        b" ",
        b"\xc3\xa9",
        b"\0",
        b"\xff",
        // Runs of bytes in no trigger, of lengths that shift the following
        // trigger across the eight-byte steps of the `u16` walk.
        b"\xf0\xf1\xf2",
        b"\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc",
    ];

    /// Compiled once: building four inspectors per generated case would
    /// dominate the test's time.
    static INSPECTORS: std::sync::LazyLock<Vec<Inspector>> = std::sync::LazyLock::new(|| {
        (1..=4)
            .map(|pl| Inspector::new(Policy::at_paranoia(pl)).unwrap())
            .collect()
    });

    #[test]
    fn the_trigger_table_folds_case_into_few_byte_classes() {
        for ins in INSPECTORS.iter() {
            let t = &ins.trigger_table;
            assert_eq!(t.classes[usize::from(b'S')], t.classes[usize::from(b's')]);
            assert_eq!(t.classes[usize::from(b'q')], t.classes[usize::from(b'Q')]);
            // Bytes in no trigger share class 0.
            assert_eq!(t.classes[0xFF], 0);
            assert!(
                t.classes.iter().all(|&c| c < 128),
                "classes were not folded"
            );
        }
    }

    proptest::proptest! {
        /// The memo answers "seen before?" exactly as a list of the values
        /// it recorded would (it records at most `SEEN_MAX`, and a value
        /// only if no different value with its length, tag and first and
        /// last eight bytes is recorded), on values from a two-letter
        /// alphabet.
        #[test]
        fn the_seen_memo_answers_like_a_plain_list(
            picks in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        proptest::prop_oneof![proptest::prelude::Just(b'a'), proptest::prelude::Just(b'b')],
                        0..6,
                    ),
                    0usize..3,
                    0u8..2,
                ),
                0..90,
            ),
        ) {
            // Short values as they are; longer ones between fixed ends, so
            // equal ends and fingerprints with different middles are common
            // (above 16 bytes and below).
            let values: Vec<(Vec<u8>, u8)> = picks
                .into_iter()
                .map(|(mid, shape, tag)| match shape {
                    0 => (mid, tag),
                    1 => ([&b"aaaaaaaa"[..], &mid, b"bbbbbbbb"].concat(), tag),
                    _ => ([&b"abab"[..], &mid, b"ab"].concat(), tag),
                })
                .collect();
            let ends = |v: &[u8]| {
                let k = v.len().min(8);
                (v.len(), v[..k].to_vec(), v[v.len() - k..].to_vec())
            };
            let mut seen = Seen::new();
            let mut list: Vec<(Vec<u8>, u8)> = Vec::new();
            for (v, tag) in &values {
                let present = list.contains(&(v.clone(), *tag));
                let taken = list.iter().any(|(w, t)| t == tag && ends(w) == ends(v));
                if !taken && list.len() < SEEN_MAX {
                    list.push((v.clone(), *tag));
                }
                proptest::prop_assert_eq!(seen.insert(v, *tag), !present);
            }
        }

        /// The flat-table walk with its replay gives exactly the rules and
        /// the walked bytes of the restarted reference search, at every
        /// paranoia level (PL4 has every built-in trigger).
        #[test]
        fn the_table_walk_replays_the_reference_trigger_search_exactly(
            picks in proptest::collection::vec(0usize..PIECES.len(), 0..80),
        ) {
            let v: Vec<u8> = picks.iter().flat_map(|&k| PIECES[k].iter().copied()).collect();
            for ins in INSPECTORS.iter() {
                proptest::prop_assert!(ins.trigger_table.narrow.is_some());
                let (ref_hits, ref_walked) = ins.trigger_hits_reference(&v);
                // The `u16` eight-byte walk the built-in policies use, and
                // the `u32` one larger policies fall back to.
                for (fast_hits, fast_walked) in [ins.trigger_hits(&v), ins.trigger_hits_on(&v, None)] {
                    proptest::prop_assert_eq!(fast_hits.0, ref_hits.0);
                    proptest::prop_assert_eq!(fast_walked, ref_walked);
                }
            }
        }
    }
}
