//! What each request is: a route drawn from a weighted mix.
//!
//! A route carries what the rest of the world needs to cost a request:
//! payload sizes (the inspector's per-KB cost, bandwidth), the backend's mean
//! service time, and whether it needs a token or *is* the login. The mix is
//! drawn per request with one uniform draw and a binary search
//! ([`WeightedTable`]), so a mix of 50 routes costs the same as a mix of 2.

use rampart_rng::{ActorRng, WeightedTable};
use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Errors, FieldError};
use crate::units::ByteSize;

/// The most routes a mix may hold, so a [`RouteId`] fits in a `u16`.
pub const ROUTES_MAX: usize = u16::MAX as usize;

/// An HTTP method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    /// The method as it is written on the wire: `GET`, `POST`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

/// One API route and what a request to it costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A unique name, used by traces and reports.
    pub name: String,
    /// The request method.
    #[serde(default)]
    pub method: Method,
    /// The request path, starting with `/`.
    pub path: String,
    /// Relative share of requests; need not sum to 1 across routes. Zero is
    /// allowed (a login route reached only when a session starts).
    pub weight: f64,
    /// Request body size: drives the inspector's per-KB cost.
    #[serde(default)]
    pub request_bytes: ByteSize,
    /// Response body size.
    #[serde(default)]
    pub response_bytes: ByteSize,
    /// Mean service time at the backend; the simulator draws around it.
    pub backend_cost: Duration,
    /// Whether the request must carry an access token.
    #[serde(default)]
    pub auth: bool,
    /// Whether this route is the login endpoint (credentials in, tokens out).
    #[serde(default)]
    pub login: bool,
}

/// A route's index in its [`RouteMix`], in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId(pub u16);

/// A validated set of routes with a sampler.
#[derive(Clone, Debug)]
pub struct RouteMix {
    routes: Vec<Route>,
    table: WeightedTable,
    login: Option<RouteId>,
}

impl RouteMix {
    /// Validates `routes` (paths relative to the list: `[2].weight`) and
    /// builds the sampler.
    pub fn new(routes: Vec<Route>) -> Result<RouteMix, Vec<FieldError>> {
        RouteMix::validate(&routes)?;
        let weights: Vec<f64> = routes.iter().map(|r| r.weight).collect();
        let table = WeightedTable::new(&weights)
            .map_err(|e| vec![FieldError::new("", format!("route weights: {e}"))])?;
        let login = routes
            .iter()
            .position(|r| r.login)
            .map(|i| RouteId(i as u16));
        Ok(RouteMix {
            routes,
            table,
            login,
        })
    }

    /// Every problem with a route list: unique names, valid paths, finite
    /// non-negative weights that are not all zero, at most one login route
    /// (and one whenever a route needs a token, since tokens come from it).
    pub fn validate(routes: &[Route]) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        if routes.is_empty() {
            errors.push("", "at least one route is needed");
        }
        if routes.len() > ROUTES_MAX {
            errors.push("", format!("at most {ROUTES_MAX} routes are allowed"));
        }
        let mut names = std::collections::BTreeMap::new();
        for (i, r) in routes.iter().enumerate() {
            if r.name.is_empty() {
                errors.push(format!("[{i}].name"), "must not be empty");
            } else if let Some(first) = names.insert(r.name.as_str(), i) {
                errors.push(
                    format!("[{i}].name"),
                    format!("{:?} is already the name of route [{first}]", r.name),
                );
            }
            if !r.path.starts_with('/') {
                errors.push(format!("[{i}].path"), "must start with \"/\"");
            }
            if !r.weight.is_finite() || r.weight < 0.0 {
                errors.push(
                    format!("[{i}].weight"),
                    format!("{} is not a finite, non-negative weight", r.weight),
                );
            }
            if r.login && r.auth {
                errors.push(
                    format!("[{i}].auth"),
                    "the login route cannot itself need a token",
                );
            }
        }
        if !routes.is_empty()
            && routes
                .iter()
                .all(|r| r.weight == 0.0 || !r.weight.is_finite())
        {
            errors.push("", "every weight is zero, so no route can be picked");
        }
        let logins: Vec<usize> = (0..routes.len()).filter(|&i| routes[i].login).collect();
        for &i in logins.iter().skip(1) {
            errors.push(
                format!("[{i}].login"),
                format!("route [{}] is already the login route", logins[0]),
            );
        }
        if logins.is_empty()
            && let Some(i) = routes.iter().position(|r| r.auth)
        {
            errors.push(
                format!("[{i}].auth"),
                "needs a token, but no route has `login = true` to obtain one",
            );
        }
        errors.finish()
    }

    /// Draws a route in proportion to the weights. Zero-weight routes are
    /// never drawn.
    pub fn pick(&self, rng: &mut ActorRng) -> RouteId {
        RouteId(self.table.sample(rng) as u16)
    }

    /// The route with this id.
    ///
    /// # Panics
    /// If `id` did not come from this mix.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[usize::from(id.0)]
    }

    /// The login route, if there is one.
    pub fn login(&self) -> Option<RouteId> {
        self.login
    }

    /// The route named `name`, for trace replay.
    pub fn find(&self, name: &str) -> Option<RouteId> {
        self.routes
            .iter()
            .position(|r| r.name == name)
            .map(|i| RouteId(i as u16))
    }

    /// All routes, in file order (index = [`RouteId`]).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Always false: a mix has at least one route.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_rng::actor_rng;

    fn route(name: &str, weight: f64) -> Route {
        Route {
            name: name.into(),
            method: Method::Get,
            path: format!("/{name}"),
            weight,
            request_bytes: ByteSize(0),
            response_bytes: ByteSize(1024),
            backend_cost: Duration::from_millis(5),
            auth: false,
            login: false,
        }
    }

    #[test]
    fn picks_follow_the_weights_and_never_pick_a_zero_weight_route() {
        let mix = RouteMix::new(vec![route("a", 1.0), route("b", 0.0), route("c", 3.0)]).unwrap();
        let mut rng = actor_rng(1, "mix");
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[usize::from(mix.pick(&mut rng).0)] += 1;
        }
        assert_eq!(counts[1], 0);
        // Binomial: p = 0.75 of 40k, sd ≈ 87; five sd.
        assert!((counts[2] as i64 - 30_000).abs() < 435, "{counts:?}");
        assert_eq!(mix.find("c"), Some(RouteId(2)));
        assert_eq!(mix.route(RouteId(2)).name, "c");
    }

    #[test]
    fn validation_names_every_bad_route() {
        let mut bad = vec![
            route("a", 1.0),
            route("a", f64::NAN),
            route("c", -1.0),
            route("d", 0.0),
        ];
        bad[3].path = "nope".into();
        bad[3].auth = true;
        let paths: Vec<String> = RouteMix::validate(&bad)
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "[1].name",
                "[1].weight",
                "[2].weight",
                "[3].path",
                "[3].auth"
            ]
        );
        let errors = RouteMix::new(vec![route("z", 0.0)]).unwrap_err();
        assert!(
            errors[0].message.contains("every weight is zero"),
            "{errors:?}"
        );
        assert!(RouteMix::new(vec![]).is_err());
    }

    #[test]
    fn the_login_route_is_found_and_must_be_unique() {
        let mut routes = vec![route("login", 0.0), route("orders", 1.0)];
        routes[0].login = true;
        routes[1].auth = true;
        let mix = RouteMix::new(routes.clone()).unwrap();
        assert_eq!(mix.login(), Some(RouteId(0)));
        routes[1].login = true;
        routes[1].auth = false;
        let errors = RouteMix::validate(&routes).unwrap_err();
        assert_eq!(errors[0].path, "[1].login");
    }

    #[test]
    fn routes_read_from_toml_with_sizes_and_costs() {
        #[derive(Deserialize)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        struct F {
            routes: Vec<Route>,
        }
        let f: F = toml::from_str(
            r#"
            [[routes]]
            name = "upload"
            method = "POST"
            path = "/v1/upload"
            weight = 0.1
            request_bytes = "64KiB"
            backend_cost = "20ms"
            auth = true
            "#,
        )
        .unwrap();
        assert_eq!(f.routes[0].method, Method::Post);
        assert_eq!(f.routes[0].request_bytes, ByteSize(65_536));
        let e = toml::from_str::<F>(
            "[[routes]]\nname=\"x\"\npath=\"/\"\nweight=1\nbackend_cost=\"1ms\"\ncost=2",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("cost"), "{e}");
    }
}
