//! Request templates and the inspector's verdict cache.
//!
//! Generated requests are drawn from a fixed set of templates per route,
//! with real bytes: a method, a path, a query and, for writes, a JSON body of
//! the route's size. The real inspector runs once per (template, policy) and
//! the verdict is reused: the inspector is a pure function of the request
//! and the rule set, so reuse cannot change a decision. The modelled CPU is
//! charged on every request regardless.

use std::net::{IpAddr, Ipv4Addr};

use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_traffic::Method;
use rampart_waf::Request;

use crate::sources::Source;
use rampart_gateway::CompiledPolicy;

/// Templates per route.
const PER_ROUTE: usize = 8;

const WORDS: &[&str] = &[
    "order", "delivery", "Tuesday", "thanks", "please", "O'Brien", "café", "invoice", "the",
    "package", "arrived", "late", "and", "we'd", "like", "a", "refund", "for", "two", "items",
    "size", "medium", "blue", "gift", "wrap", "note", "happy", "birthday", "Zoë", "select", "from",
    "our", "list", "update", "address", "flat", "3B",
];

#[derive(Debug)]
struct Template {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
}

impl Template {
    fn bytes(&self) -> u64 {
        (self.method.len() + self.path.len() + self.query.len() + self.body.len()) as u64
    }
}

/// Every source's templates, and cached verdicts per policy.
#[derive(Debug)]
pub struct Templates {
    /// `[source][route * PER_ROUTE + k]`.
    by_source: Vec<Vec<Template>>,
    /// `[policy index]` → `[flat template index]` → (blocked, bytes).
    verdicts: Vec<Vec<Option<(bool, u64)>>>,
    offsets: Vec<usize>,
    n_total: usize,
}

impl Templates {
    /// Builds templates for every route of every source, from a stream of
    /// their own so adding a source shifts nothing else.
    pub fn new(seed: u64, sources: &[Source]) -> Templates {
        let mut by_source = Vec::new();
        let mut offsets = Vec::new();
        let mut n_total = 0;
        for s in sources {
            let mut rng = actor_rng(seed, &format!("templates/{}", s.spec.name));
            let mut ts = Vec::new();
            for r in 0..s.n_routes() {
                let route = s.route(r as u16);
                for k in 0..PER_ROUTE {
                    ts.push(make(
                        &mut rng,
                        method_str(route.method),
                        &route.path,
                        route.request_bytes.0,
                        k,
                    ));
                }
            }
            offsets.push(n_total);
            n_total += ts.len();
            by_source.push(ts);
        }
        Templates {
            by_source,
            verdicts: Vec::new(),
            offsets,
            n_total,
        }
    }

    /// Templates per route.
    pub fn per_route(&self) -> usize {
        PER_ROUTE
    }

    /// The verdict for a template under a policy: (blocked, bytes scanned).
    pub fn verdict(
        &mut self,
        policy: &CompiledPolicy,
        source: u16,
        route: u16,
        k: u16,
    ) -> (bool, u64) {
        let p = policy.index as usize;
        if self.verdicts.len() <= p {
            self.verdicts.resize_with(p + 1, Vec::new);
        }
        if self.verdicts[p].is_empty() {
            self.verdicts[p] = vec![None; self.n_total];
        }
        let local = route as usize * PER_ROUTE + k as usize;
        let flat = self.offsets[source as usize] + local;
        if let Some(v) = self.verdicts[p][flat] {
            return v;
        }
        let t = &self.by_source[source as usize][local];
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut req = Request::new(&t.method, &t.path, ip).with_query(&t.query);
        if !t.body.is_empty() {
            req = req.with_body("application/json", &t.body);
        }
        let v = rampart_gateway::inspect(policy, &req, t.bytes());
        let out = (v.blocked, v.bytes);
        self.verdicts[p][flat] = Some(out);
        out
    }
}

pub(crate) fn method_str(m: Method) -> &'static str {
    m.as_str()
}

fn make(rng: &mut ActorRng, method: &str, path: &str, size: u64, k: usize) -> Template {
    let id = rng::uniform_u64(rng, 1, 1_000_000);
    let path = if path.contains("{id}") {
        path.replace("{id}", &id.to_string())
    } else {
        path.to_owned()
    };
    let query = match k % 3 {
        0 => String::new(),
        1 => format!("page={}&per_page=50", 1 + k),
        _ => "sort=created_at&order=desc".to_owned(),
    };
    let writes = matches!(method, "POST" | "PUT" | "PATCH");
    let body = if writes && size > 0 {
        json_body(rng, size as usize)
    } else {
        Vec::new()
    };
    Template {
        method: method.to_owned(),
        path,
        query,
        body,
    }
}

/// A JSON object of about `size` bytes: ids, names and prose.
fn json_body(rng: &mut ActorRng, size: usize) -> Vec<u8> {
    let mut s = String::from("{\"id\":");
    s.push_str(&rng::uniform_u64(rng, 1, 1_000_000).to_string());
    s.push_str(",\"name\":\"Siobhán O'Brien\",\"note\":\"");
    while s.len() + 2 < size.max(32) {
        let w = WORDS[rng::uniform_u64(rng, 0, WORDS.len() as u64) as usize];
        s.push_str(w);
        s.push(' ');
    }
    s.push_str("\"}");
    s.into_bytes()
}
