//! The instance's link to the token service: its JWKS, and the revocation
//! feed that keeps the verifier's denylist current.
//!
//! Push mode subscribes to `GET /revocations/stream?since=N` (server-sent
//! events); each `revocations` event is a delta the verifier applies, and
//! each keep-alive comment proves the feed live (an empty delta at the
//! held version), so a fail-closed verifier does not call a quiet feed
//! stale. When the stream breaks, the instance polls once to close the gap
//! and reconnects with backoff (100 ms doubling to 5 s). Poll mode asks
//! `GET /revocations?since=N` every `revocation_poll_interval`.
//!
//! The JWKS is fetched on connecting and again when the verifier asks
//! (`jwks_refresh_interval`, or a token with an unknown kid). While the
//! instance's clock says a revocation partition cuts it off, every fetch
//! fails and an open stream breaks, as a cut link would. After a reload that rebuilt the verifier, the
//! loop starts over: JWKS, shared keys, and every revocation from version 0.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_auth::RevocationDelta;
use tokio::sync::watch;

use super::Instance;

/// How an instance learns of revocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FeedMode {
    /// Server-sent events, with a poll to close gaps.
    #[default]
    Push,
    /// A poll every `revocation_poll_interval`.
    Poll,
    /// The control plane at this address pushes revocations, keys and
    /// policy rollouts (`super::plane`).
    Plane(std::net::SocketAddr),
    /// Revocations and keys polled as [`FeedMode::Poll`]; the control
    /// plane at this address carries policy rollouts only.
    PolicyPlane(std::net::SocketAddr),
}

/// How often the verifier is asked whether the JWKS is due: the latency
/// of an unknown-kid refetch, beyond the verifier's own floor.
const JWKS_CHECK: StdDuration = StdDuration::from_millis(250);

/// The largest JWKS document or SSE event read; past it the read fails and
/// the loop retries (a JWKS is a few keys, a delta a token lifetime of
/// revocations).
const DOCUMENT_BYTES_MAX: usize = 16 << 20;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn get(client: &HttpClient, base: &Uri, pq: &str) -> Result<Incoming, String> {
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(pq.parse().map_err(|e| format!("{e}"))?);
    let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
    let req = Request::get(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(StdDuration::from_secs(5), client.request(req))
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{pq}: status {}", resp.status()));
    }
    Ok(resp.into_body())
}

async fn get_text(client: &HttpClient, base: &Uri, pq: &str) -> Result<String, String> {
    let body = get(client, base, pq).await?;
    let bytes = tokio::time::timeout(
        StdDuration::from_secs(5),
        http_body_util::Limited::new(body, DOCUMENT_BYTES_MAX).collect(),
    )
    .await
    .map_err(|_| "body did not arrive within 5 s".to_owned())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
}

pub(super) fn apply(inst: &Instance, delta: &RevocationDelta) -> Result<(), String> {
    let unix = inst.clock.unix();
    let mut cores = inst.cores();
    cores
        .verifier
        .apply_revocations(unix, delta)
        .map_err(|e| e.to_string())?;
    inst.metrics
        .revocation_version
        .set(i64::try_from(cores.verifier.revocation_version()).unwrap_or(i64::MAX));
    Ok(())
}

async fn poll_once(inst: &Instance, client: &HttpClient, base: &Uri) -> Result<(), String> {
    reachable(inst)?;
    let since = inst.cores().verifier.revocation_version();
    let text = get_text(client, base, &format!("/revocations?since={since}")).await?;
    let delta: RevocationDelta = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    apply(inst, &delta)
}

/// Loads the JWKS and the instance's shared keys into its verifier.
async fn load_keys(inst: &Instance, client: &HttpClient, base: &Uri) -> Result<(), String> {
    reachable(inst)?;
    let jwks = get_text(client, base, "/.well-known/jwks.json").await?;
    load_jwks(inst, &jwks)
}

/// Loads a JWKS document and the instance's shared keys into its verifier.
pub(super) fn load_jwks(inst: &Instance, jwks: &str) -> Result<(), String> {
    let mut cores = inst.cores();
    cores.verifier.on_jwks(jwks).map_err(|e| e.to_string())?;
    for (kid, secret) in &inst.shared_keys {
        // Already present after an earlier pass: one kid, one key.
        let _ = cores.verifier.add_shared_key(kid, secret);
    }
    Ok(())
}

/// A revocation partition cuts the instance off from the token service:
/// every fetch fails, and an open stream breaks.
fn reachable(inst: &Instance) -> Result<(), String> {
    if inst.clock.feed_cut() {
        Err(PARTITIONED.to_owned())
    } else {
        Ok(())
    }
}

const PARTITIONED: &str = "partitioned from the token service";

/// Reads server-sent events from `body`, applying each delta, until the
/// stream ends or fails. Returns why it stopped.
async fn stream(inst: &Instance, mut body: Incoming, epoch: &mut watch::Receiver<u64>) -> String {
    let mut buf = BytesMut::new();
    loop {
        if inst.clock.feed_cut() {
            return PARTITIONED.to_owned();
        }
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = epoch.changed() => return "verifier rebuilt".to_owned(),
            // Wake to see whether a partition began.
            () = tokio::time::sleep(JWKS_CHECK) => continue,
        };
        let data = match frame {
            None => return "stream ended".to_owned(),
            Some(Err(e)) => return e.to_string(),
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        buf.extend_from_slice(&data);
        if buf.len() > DOCUMENT_BYTES_MAX {
            return "event larger than the cap".to_owned();
        }
        while let Some(end) = find(&buf, b"\n\n") {
            let event = buf.split_to(end + 2);
            let text = String::from_utf8_lossy(&event);
            let data: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let r = if data.is_empty() {
                // A keep-alive: nothing newer than what is held.
                let v = inst.cores().verifier.revocation_version();
                apply(
                    inst,
                    &RevocationDelta {
                        since_version: v,
                        version: v,
                        entries: Vec::new(),
                    },
                )
            } else {
                serde_json::from_str::<RevocationDelta>(&data)
                    .map_err(|e| e.to_string())
                    .and_then(|d| apply(inst, &d))
            };
            if let Err(e) = r {
                return e;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Keeps the instance's keys and revocations current until `stop` turns.
pub(super) async fn run(
    inst: Arc<Instance>,
    base: Uri,
    mode: FeedMode,
    mut stop: watch::Receiver<bool>,
) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut epoch = inst.verifier_epoch.subscribe();
    let mut backoff = StdDuration::from_millis(100);
    loop {
        epoch.borrow_and_update();
        let connected = std::sync::atomic::AtomicBool::new(false);
        let pass = async {
            load_keys(&inst, &client, &base).await?;
            connected.store(true, std::sync::atomic::Ordering::Relaxed);
            // The JWKS is fetched again when the verifier says so: every
            // `jwks_refresh_interval`, and soon after a token names a kid
            // it does not know (a key that began signing, or a rotation's
            // replacement), within its refetch floor. So a key rotated out
            // stops verifying here by then, as in the simulator. A failed
            // fetch keeps the keys held and tries again when next due.
            let refresh = async {
                inst.cores().verifier.take_jwks_due(inst.clock.unix());
                loop {
                    tokio::time::sleep(JWKS_CHECK).await;
                    let due = inst.cores().verifier.take_jwks_due(inst.clock.unix());
                    if due && let Err(e) = load_keys(&inst, &client, &base).await {
                        tracing::warn!(instance = inst.id, error = %e, "JWKS refresh failed");
                    }
                }
            };
            let feed = async {
                match mode {
                    FeedMode::Poll | FeedMode::PolicyPlane(_) => {
                        let every = inst.cores().verifier.config().revocation_poll_interval;
                        let every = StdDuration::from_nanos(every.as_nanos().max(1_000_000));
                        loop {
                            poll_once(&inst, &client, &base).await?;
                            tokio::select! {
                                _ = tokio::time::sleep(every) => {}
                                _ = epoch.changed() => return Err("verifier rebuilt".to_owned()),
                            }
                        }
                    }
                    // Not run here: `super::plane` runs the agent instead.
                    FeedMode::Plane(_) => Err("the control plane feeds this instance".to_owned()),
                    FeedMode::Push => {
                        reachable(&inst)?;
                        let since = inst.cores().verifier.revocation_version();
                        let body = get(
                            &client,
                            &base,
                            &format!("/revocations/stream?since={since}"),
                        )
                        .await?;
                        let why = stream(&inst, body, &mut epoch).await;
                        // Close whatever gap the break left before waiting.
                        let _ = poll_once(&inst, &client, &base).await;
                        Err(why)
                    }
                }
            };
            tokio::select! {
                r = feed => r,
                () = refresh => Ok(()),
            }
        };
        let why: Result<(), String> = tokio::select! {
            r = pass => r,
            _ = stop.changed() => return,
        };
        if connected.load(std::sync::atomic::Ordering::Relaxed) {
            backoff = StdDuration::from_millis(100);
        }
        if let Err(why) = why {
            inst.metrics.feed_reconnects.inc();
            if why == "verifier rebuilt" {
                backoff = StdDuration::from_millis(100);
                continue;
            }
            tracing::warn!(instance = inst.id, error = %why, "revocation feed broke; reconnecting");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(StdDuration::from_secs(5));
    }
}
