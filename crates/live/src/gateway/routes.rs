//! The route table: which named route a request is, and what it needs.
//!
//! Rate-limit rules select routes by name, and a route says whether it
//! needs a token and whether it is the login. The simulator knows each
//! request's route; the live gateway finds it by method and path template
//! (`/api/products/{id}` matches one segment per `{…}`). A request that
//! matches no route is `unmatched`: rules without a route filter still
//! apply, and it needs a token, so a route nobody declared is closed by
//! default.

use std::sync::Arc;

use rampart_traffic::Route;

/// The name `unmatched` requests carry in limits, metrics and logs.
pub const UNMATCHED: &str = "unmatched";

/// One route as the gateway matches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Its name, as rate-limit rules and metrics name it.
    pub name: String,
    /// The name again, shared by the metrics' label sets.
    pub label: Arc<String>,
    /// Its method.
    pub method: &'static str,
    /// Its path template, split into segments; `None` matches any one.
    segments: Vec<Option<String>>,
    /// Calls need a bearer token.
    pub auth: bool,
    /// It is the login endpoint: abuse detection judges it.
    pub login: bool,
}

/// Every route the gateway knows, matched in declaration order.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Arc<RouteInfo>>,
    unmatched: Arc<RouteInfo>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::new(&[])
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl RouteTable {
    /// The table of a scenario's routes. A name declared twice (by two
    /// traffic classes) keeps its first declaration.
    pub fn new(routes: &[Route]) -> RouteTable {
        let mut out: Vec<Arc<RouteInfo>> = Vec::new();
        for r in routes {
            if out.iter().any(|o| o.name == r.name) {
                continue;
            }
            out.push(Arc::new(RouteInfo {
                name: r.name.clone(),
                label: Arc::new(r.name.clone()),
                method: r.method.as_str(),
                segments: split(&r.path)
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect(),
                auth: r.auth,
                login: r.login,
            }));
        }
        RouteTable {
            routes: out,
            unmatched: Arc::new(RouteInfo {
                name: UNMATCHED.to_owned(),
                label: Arc::new(UNMATCHED.to_owned()),
                method: "",
                segments: Vec::new(),
                auth: true,
                login: false,
            }),
        }
    }

    /// The route a request is: the first whose method and template match.
    pub fn find(&self, method: &str, path: &str) -> &Arc<RouteInfo> {
        self.routes
            .iter()
            .find(|r| {
                r.method == method && {
                    let mut segs = split(path);
                    r.segments.iter().all(|want| match (segs.next(), want) {
                        (Some(s), Some(w)) => s == w,
                        (Some(_), None) => true,
                        (None, _) => false,
                    }) && segs.next().is_none()
                }
            })
            .unwrap_or(&self.unmatched)
    }

    /// The `unmatched` route's metrics label.
    pub fn unmatched_label(&self) -> Arc<String> {
        self.unmatched.label.clone()
    }

    /// Every route's name, and `unmatched`: the route label's values.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes
            .iter()
            .map(|r| r.name.as_str())
            .chain(std::iter::once(UNMATCHED))
    }
}
