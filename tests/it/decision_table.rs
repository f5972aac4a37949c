//! One table of request sequences and instants, replayed through the
//! simulator's gateway (`rampart_sim::gateway::Gateway::decide`, which the
//! world calls for every request) and through the live gateway's tower
//! layers on a test clock: every answer must carry the same status, the
//! same `RateLimit`, `Retry-After` and `WWW-Authenticate` headers, and the
//! same reason.
//!
//! The table crosses every stage: per-IP GCRA bursts and their refill,
//! per-account windows keyed by the token's subject, a login limit, every
//! kind of bad token, a revocation applied mid-table, injections in the
//! query and the body, and failed logins until the abuse detector blocks.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use rampart_auth::{Claims, KeyMaterial, Revocation, RevocationDelta, RevocationTarget};
use rampart_gateway::{Bearer, CompiledPolicy, Inspected, Rejected};
use rampart_live::clock::ManualClock;
use rampart_live::gateway::layers::{self, Ctx, GwFuture, GwRequest, GwResponse, full};
use rampart_live::gateway::routes::RouteTable;
use rampart_live::gateway::{Instance, Limits};
use rampart_sim::gateway::{Facts, Gateway};
use rampart_time::{Duration, Instant};
use rampart_world::PolicyBundle;
use tower::Service;

const POLICY: &str = r#"
version = "table-1"

[[ratelimit]]
name = "per-ip"
key = ["ip"]
limit = { algorithm = "gcra", period = "100ms", burst = 4 }

[[ratelimit]]
name = "per-account"
key = ["account"]
routes = ["browse"]
limit = { algorithm = "fixed_window", limit = 3, window = "1s" }

[[ratelimit]]
name = "login-per-ip"
key = ["ip"]
routes = ["login"]
limit = { algorithm = "sliding_window", limit = 8, window = "10s" }

[abuse]
ip_failures_max = 3
account_failures_max = 100
"#;

const ROUTES: &str = r#"
name = "t"
model = { kind = "open", shape = { kind = "constant", rate = "1/s" } }
routes = [
    { name = "login", method = "POST", path = "/login", weight = 0, backend_cost = "1ms", login = true },
    { name = "browse", method = "GET", path = "/api/products/{id}", weight = 1, backend_cost = "1ms", auth = true },
    { name = "search", method = "GET", path = "/api/search", weight = 1, backend_cost = "1ms", auth = true },
    { name = "comment", method = "POST", path = "/api/comments", weight = 1, backend_cost = "1ms", auth = true },
    { name = "public", method = "GET", path = "/public", weight = 1, backend_cost = "1ms" },
]
"#;

const SECRET: &[u8] = b"a shared secret of at least thirty-two bytes";
/// Monotonic zero of both clocks, on the Unix clock.
const EPOCH_S: u64 = 1_800_000_000;

#[derive(Clone, Copy, Debug)]
enum Tok {
    None,
    Valid(&'static str, &'static str),
    Expired,
    AlgNone,
    BadSignature,
    WrongAudience,
    Garbage,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Req {
        at_ms: u64,
        ip: u8,
        method: &'static str,
        path: &'static str,
        token: Tok,
        body: &'static str,
    },
    /// The token with this `jti` is revoked on both.
    Revoke(&'static str),
}

fn req(at_ms: u64, ip: u8, method: &'static str, path: &'static str, token: Tok) -> Step {
    Step::Req {
        at_ms,
        ip,
        method,
        path,
        token,
        body: "",
    }
}

fn login(at_ms: u64, ip: u8, user: &'static str, password: &'static str) -> Step {
    Step::Req {
        at_ms,
        ip,
        method: "POST",
        path: "/login",
        token: Tok::None,
        body: if password == "right" {
            if user == "ann" {
                r#"{"username":"ann","password":"right"}"#
            } else {
                r#"{"username":"bob","password":"right"}"#
            }
        } else if user == "ann" {
            r#"{"username":"ann","password":"wrong"}"#
        } else {
            r#"{"username":"bob","password":"wrong"}"#
        },
    }
}

fn table() -> Vec<Step> {
    use Tok::*;
    let mut t = vec![
        // A valid token, then a burst from one address past GCRA's burst.
        req(0, 1, "GET", "/api/search", Valid("ann", "j1")),
        req(1, 1, "GET", "/api/search", Valid("ann", "j1")),
        req(2, 1, "GET", "/api/search", Valid("ann", "j1")),
        req(3, 1, "GET", "/api/search", Valid("ann", "j1")),
        req(4, 1, "GET", "/api/search", Valid("ann", "j1")),
        req(5, 1, "GET", "/api/search", Valid("ann", "j1")),
        // Refilled one emission interval later.
        req(110, 1, "GET", "/api/search", Valid("ann", "j1")),
        // The per-account window on browse, from different addresses.
        req(200, 2, "GET", "/api/products/1", Valid("bob", "j2")),
        req(201, 3, "GET", "/api/products/2", Valid("bob", "j2")),
        req(202, 4, "GET", "/api/products/3", Valid("bob", "j2")),
        req(203, 5, "GET", "/api/products/4", Valid("bob", "j2")),
        req(1_001, 6, "GET", "/api/products/5", Valid("bob", "j2")),
        // Every kind of bad token, and none.
        req(1_100, 7, "GET", "/api/search", None),
        req(1_101, 7, "GET", "/api/search", Expired),
        req(1_102, 7, "GET", "/api/search", AlgNone),
        req(1_103, 8, "GET", "/api/search", BadSignature),
        req(1_104, 8, "GET", "/api/search", WrongAudience),
        req(1_105, 8, "GET", "/api/search", Garbage),
        // A route nobody declared needs a token; a public one does not.
        req(1_200, 9, "GET", "/admin", None),
        req(1_201, 9, "GET", "/public", None),
        // Injections, in the query and in a JSON body.
        req(
            1_300,
            10,
            "GET",
            "/api/search?q=1%27%20OR%20%271%27%3D%271",
            Valid("ann", "j1"),
        ),
        Step::Req {
            at_ms: 1_301,
            ip: 10,
            method: "POST",
            path: "/api/comments",
            token: Valid("ann", "j1"),
            body: r#"{"text":"<script>alert(document.cookie)</script>"}"#,
        },
        Step::Req {
            at_ms: 1_302,
            ip: 10,
            method: "POST",
            path: "/api/comments",
            token: Valid("ann", "j1"),
            body: r#"{"text":"the parcel came late, thanks"}"#,
        },
        // An injection with a bad token: the token stage answers first.
        req(
            1_303,
            10,
            "GET",
            "/api/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
            Expired,
        ),
        // Revocation, then the revoked token and another still valid.
        req(1_400, 11, "GET", "/api/search", Valid("ann", "j3")),
        Step::Revoke("j3"),
        req(1_500, 11, "GET", "/api/search", Valid("ann", "j3")),
        req(1_501, 11, "GET", "/api/search", Valid("ann", "j1")),
    ];
    // Failed logins from one address until the detector blocks it, then a
    // right password from it, and one from elsewhere.
    for i in 0..4 {
        t.push(login(2_000 + i * 10, 12, "ann", "wrong"));
    }
    t.push(login(2_100, 12, "ann", "right"));
    t.push(login(2_101, 13, "bob", "right"));
    // The login limit: eight a window per address.
    for i in 0..9 {
        t.push(login(3_000 + i, 14, "bob", "right"));
    }
    t
}

fn key() -> KeyMaterial {
    KeyMaterial::Hs256 {
        kid: "k1".into(),
        secret: SECRET.to_vec(),
    }
}

fn mint(sub: &str, jti: &str, exp_s: u64, aud: &str, material: &KeyMaterial) -> String {
    let claims = Claims {
        iss: "rampart".into(),
        sub: sub.into(),
        aud: vec![aud.into()],
        iat: EPOCH_S,
        nbf: EPOCH_S,
        exp: exp_s,
        jti: jti.into(),
        sid: format!("s-{jti}"),
        scope: "api".into(),
    };
    rampart_auth::sign_claims(material, rampart_auth::TYP_ACCESS, &claims).expect("signs")
}

fn token(t: Tok) -> Option<String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let good = |sub, jti| mint(sub, jti, EPOCH_S + 3600, "api", &key());
    match t {
        Tok::None => None,
        Tok::Valid(sub, jti) => Some(good(sub, jti)),
        Tok::Expired => Some(mint("ann", "jx", EPOCH_S - 3600, "api", &key())),
        Tok::WrongAudience => Some(mint("ann", "ja", EPOCH_S + 3600, "other", &key())),
        Tok::BadSignature => {
            let other = KeyMaterial::Hs256 {
                kid: "k1".into(),
                secret: b"another secret of at least thirty-two bytes".to_vec(),
            };
            Some(mint("ann", "jb", EPOCH_S + 3600, "api", &other))
        }
        Tok::AlgNone => {
            let g = good("ann", "jn");
            let payload = g.split('.').nth(1).expect("three parts");
            Some(format!(
                "{}.{payload}.",
                b64(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#)
            ))
        }
        Tok::Garbage => Some("not-a-token".into()),
    }
}

fn revocation(jti: &str) -> RevocationDelta {
    RevocationDelta {
        since_version: 0,
        version: 1,
        entries: vec![Revocation {
            version: 1,
            target: RevocationTarget::Token { jti: jti.into() },
            until: Instant::from_nanos((EPOCH_S + 7200) * 1_000_000_000),
        }],
    }
}

/// What a client sees: status, the gateway's headers, the reason.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    reason: String,
}

const SHARED_HEADERS: [&str; 4] = [
    "ratelimit-policy",
    "ratelimit",
    "retry-after",
    "www-authenticate",
];

fn login_ok(body: &str) -> bool {
    body.contains(r#""password":"right""#)
}

fn policy() -> PolicyBundle {
    toml::from_str(POLICY).expect("the table's policy parses")
}

fn routes() -> Vec<rampart_traffic::Route> {
    let spec: rampart_traffic::TrafficSpec = toml::from_str(ROUTES).expect("routes parse");
    spec.routes.clone()
}

/// The simulator's side: its gateway instance, with the request's facts
/// read as the live gateway reads them (the route by method and path, the
/// account from the token's subject, the login's account from its body).
fn replay_sim() -> Vec<Answer> {
    let compiled = Rc::new(CompiledPolicy::compile(0, policy()).expect("compiles"));
    let life = rampart_autoscale::Instance::launch(
        0,
        0,
        Instant::ZERO,
        &rampart_autoscale::lifecycle::LifecycleConfig::default(),
        rampart_autoscale::lifecycle::BootDraw {
            boot: 0.5,
            failure: 1.0,
        },
    );
    let mut g = Gateway::new(0, life, compiled, rampart_des::rng::actor_rng(1, "table"))
        .expect("an instance boots");
    g.cores
        .verifier
        .add_shared_key("k1", SECRET)
        .expect("key accepted");
    let table_routes = RouteTable::new(&routes());
    let epoch = Instant::from_nanos(EPOCH_S * 1_000_000_000);
    let mut out = Vec::new();
    for step in table() {
        let (at_ms, ip, method, path, tok, body) = match step {
            Step::Revoke(jti) => {
                g.cores
                    .verifier
                    .apply_revocations(epoch, &revocation(jti))
                    .expect("applies");
                continue;
            }
            Step::Req {
                at_ms,
                ip,
                method,
                path,
                token: tok,
                body,
            } => (at_ms, ip, method, path, tok, body),
        };
        let now = Instant::ZERO + Duration::from_millis(at_ms);
        let unix = epoch + Duration::from_millis(at_ms);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip));
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let route = table_routes.find(method, p);
        let bearer = token(tok);
        let account = route
            .auth
            .then(|| bearer.as_deref().and_then(subject_of))
            .flatten();
        let login_subject = route.login.then(|| user_of(body));
        let facts = Facts {
            ip,
            route: &route.name,
            account: account.as_deref(),
            token: route.auth.then_some(bearer.as_deref().map(Bearer::Str)),
            login_subject: login_subject.as_deref(),
            solves_challenges: false,
        };
        let policy = Rc::clone(&g.policy);
        let d = g.decide(
            now,
            unix,
            &facts,
            |pol| {
                let mut w = rampart_waf::Request::new(method, p, ip).with_query(q);
                if !body.is_empty() {
                    w = w.with_body("application/json", body.as_bytes());
                }
                let bytes = (method.len() + p.len() + q.len() + body.len()) as u64;
                rampart_gateway::inspect(pol, &w, bytes)
            },
            &mut rampart_auth::NoMemo,
        );
        drop(policy);
        let mut headers =
            rampart_gateway::response_headers(&g.cores.limiter, Some(&d.rate), d.rejected);
        let (status, reason) = match d.rejected {
            Some(r) => (r.status(), r.reason().to_owned()),
            None => {
                if let Some(s) = login_subject.as_deref() {
                    let ok = login_ok(body);
                    g.observe_login(now, ip, s, ok);
                    (if ok { 200 } else { 400 }, "ok".to_owned())
                } else {
                    (200, "ok".to_owned())
                }
            }
        };
        let _: Option<Inspected> = d.inspected;
        headers.sort();
        out.push(Answer {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            reason,
        });
    }
    out
}

fn subject_of(token: &str) -> Option<String> {
    use base64::Engine as _;
    let p = token.split('.').nth(1)?;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

fn user_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("table bodies are JSON");
    v["username"].as_str().expect("a username").to_owned()
}

/// The stand-in upstream: 200, and for the login what the token service
/// would say (400 `invalid_grant` on a wrong password).
#[derive(Clone, Debug)]
struct Upstream;

impl Service<GwRequest> for Upstream {
    type Response = GwResponse;
    type Error = Infallible;
    type Future = GwFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: GwRequest) -> GwFuture {
        let body = String::from_utf8_lossy(req.body()).into_owned();
        let status = if req.uri().path() == "/login" && !login_ok(&body) {
            hyper::StatusCode::BAD_REQUEST
        } else {
            hyper::StatusCode::OK
        };
        let mut r = full(status, "upstream\n");
        r.extensions_mut()
            .insert(layers::UpstreamTime(std::time::Duration::ZERO));
        Box::pin(std::future::ready(Ok(r)))
    }
}

/// The live side: the gateway's layers over the stand-in upstream, the
/// clock set to each row's instant.
fn replay_live() -> Vec<Answer> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let clock = Arc::new(ManualClock::new(Instant::from_nanos(
        EPOCH_S * 1_000_000_000,
    )));
    let inst = Instance::new(
        0,
        policy(),
        clock.clone(),
        RouteTable::new(&routes()),
        vec![("k1".into(), SECRET.to_vec())],
        Vec::new(),
        Limits::default(),
    )
    .expect("an instance starts");
    let mut svc = layers::stages(&inst, Upstream);
    let mut out = Vec::new();
    for step in table() {
        let (at_ms, ip, method, path, tok, body) = match step {
            Step::Revoke(jti) => {
                let unix = rampart_live::clock::Clock::unix(&*clock);
                inst.cores()
                    .verifier
                    .apply_revocations(unix, &revocation(jti))
                    .expect("applies");
                continue;
            }
            Step::Req {
                at_ms,
                ip,
                method,
                path,
                token: tok,
                body,
            } => (at_ms, ip, method, path, tok, body),
        };
        clock.set(Instant::ZERO + Duration::from_millis(at_ms));
        let mut b = hyper::Request::builder().method(method).uri(path);
        if let Some(t) = token(tok) {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if !body.is_empty() {
            b = b.header("content-type", "application/json");
        }
        let mut r: GwRequest = b
            .body(Bytes::from_static(body.as_bytes()))
            .expect("a request");
        let c = Ctx::read(&inst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip)), &r);
        r.extensions_mut().insert(c);
        let resp = rt.block_on(svc.call(r)).expect("infallible");
        let mut headers: Vec<(String, String)> = SHARED_HEADERS
            .iter()
            .flat_map(|h| {
                resp.headers()
                    .get_all(*h)
                    .iter()
                    .map(|v| ((*h).to_owned(), v.to_str().expect("ascii").to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        headers.sort();
        let reason = resp
            .extensions()
            .get::<Rejected>()
            .map_or_else(|| "ok".to_owned(), |r| r.reason().to_owned());
        out.push(Answer {
            status: resp.status().as_u16(),
            headers,
            reason,
        });
    }
    out
}

#[test]
fn the_simulator_and_the_live_gateway_answer_every_row_of_the_decision_table_alike() {
    let sim = replay_sim();
    let live = replay_live();
    assert_eq!(sim.len(), live.len());
    for (i, (s, l)) in sim.iter().zip(&live).enumerate() {
        assert_eq!(
            s,
            l,
            "row {i}: {:?}",
            table()
                .iter()
                .filter(|s| matches!(s, Step::Req { .. }))
                .nth(i)
        );
    }
    // The table reaches every stage and every answer it can give, so a
    // stage that stopped deciding would show here, not pass silently.
    let reasons: std::collections::BTreeSet<&str> = sim.iter().map(|a| a.reason.as_str()).collect();
    for want in [
        "ok",
        "rate_limited",
        "auth.malformed",
        "auth.expired",
        "auth.unsupported_alg",
        "auth.bad_signature",
        "auth.wrong_audience",
        "auth.revoked",
        "inspection_blocked",
        "abuse_blocked",
    ] {
        assert!(reasons.contains(want), "no row ends in {want}: {reasons:?}");
    }
    let statuses: std::collections::BTreeSet<u16> = sim.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![200, 400, 401, 403, 429]
    );
    assert!(
        sim.iter()
            .any(|a| a.headers.iter().any(|(k, _)| k == "retry-after")),
        "a 429 carries Retry-After"
    );
}
