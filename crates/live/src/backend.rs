//! A backend stub that serves as the scenario's backend is modelled:
//! per-route service times drawn around each route's cost, a concurrency
//! limit, a bounded queue, and errors under overload.
//!
//! The same rules as the simulator's backend (`[fleet.backend]`):
//!
//! * a request for a known route (its method and path template, `{id}`
//!   matching one segment) takes a service time drawn around the route's
//!   `backend_cost`: log-normal with the cost as the median, exponential
//!   with it as the mean, or exactly the cost;
//! * at most `concurrency` requests are served at once; up to `queue_max`
//!   more wait; beyond that a request gets 503 at once;
//! * while more than half the queue is full, a finished request fails with
//!   500 with probability `overload_error_rate`.
//!
//! Draws come from the run seed's `backend` stream, in the order requests
//! finish their wait, so a live run's service times are the simulator's
//! distribution, not its sequence (arrival order on real sockets is not
//! reproducible).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use rampart_rng::{ActorRng, actor_rng, bernoulli, exponential, lognormal};
use rampart_time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::http::{Reply, accept_loop};

/// How service times spread around a route's cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceTime {
    /// Log-normal, the cost its median.
    Lognormal {
        /// The underlying normal's standard deviation.
        sigma: f64,
    },
    /// Exponential, the cost its mean.
    Exponential,
    /// Exactly the cost.
    Fixed,
}

/// One route the backend serves.
#[derive(Clone, Debug)]
pub struct Route {
    /// `GET`, `POST`, ...
    pub method: String,
    /// A path template: `/api/products/{id}`.
    pub path: String,
    /// The median (or mean, or exact) service time.
    pub cost: Duration,
}

/// The backend's shape, as `[fleet.backend]` and the routes describe it.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// The routes it serves; anything else is 404.
    pub routes: Vec<Route>,
    /// Requests served at once.
    pub concurrency: usize,
    /// Requests waiting beyond those.
    pub queue_max: usize,
    /// The service-time distribution.
    pub service: ServiceTime,
    /// Failure probability of a request finishing while the queue is more
    /// than half full.
    pub overload_error_rate: f64,
    /// The run seed (draws come from its `backend` stream).
    pub seed: u64,
}

struct State {
    cfg: BackendConfig,
    slots: Semaphore,
    /// Requests admitted: being served or waiting for a slot.
    admitted: AtomicUsize,
    rng: Mutex<ActorRng>,
}

/// A running backend stub.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Whether `path` matches `template`, segment by segment; `{…}` matches
/// any one non-empty segment.
pub(crate) fn matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let wild = ts.starts_with('{') && ts.ends_with('}');
                if !(wild && !ps.is_empty() || ts == ps) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

impl Backend {
    /// Starts the stub on `addr` (`127.0.0.1:0` for an ephemeral port).
    pub async fn start(addr: SocketAddr, cfg: BackendConfig) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            slots: Semaphore::new(cfg.concurrency.max(1)),
            admitted: AtomicUsize::new(0),
            rng: Mutex::new(actor_rng(cfg.seed, "backend")),
            cfg,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, state, stopped));
        Ok(Backend { addr, stop, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes its connections.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, stop: watch::Receiver<bool>) {
    let handle = move |_peer, req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    };
    let timeout = std::time::Duration::from_secs(10);
    accept_loop(listener, stop, timeout, || Some(()), handle).await;
}

fn status(code: StatusCode, text: &'static str) -> Response<Reply> {
    let mut r = Response::new(Reply::Full(Full::new(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = code;
    r
}

/// Gives its admission back however the request ends.
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Reply> {
    let cfg = &state.cfg;
    let Some(route) = cfg.routes.iter().find(|r| {
        r.method.eq_ignore_ascii_case(req.method().as_str()) && matches(&r.path, req.uri().path())
    }) else {
        return status(StatusCode::NOT_FOUND, "no such route\n");
    };
    // Admission: served plus waiting stays within concurrency + queue.
    let cap = cfg.concurrency + cfg.queue_max;
    if state.admitted.fetch_add(1, Ordering::SeqCst) >= cap {
        state.admitted.fetch_sub(1, Ordering::SeqCst);
        return status(StatusCode::SERVICE_UNAVAILABLE, "backend queue full\n");
    }
    let _admitted = Admitted(&state.admitted);
    let Ok(_slot) = state.slots.acquire().await else {
        return status(StatusCode::SERVICE_UNAVAILABLE, "backend closing\n");
    };
    let service = {
        let mut rng = state
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cfg.service {
            ServiceTime::Lognormal { sigma } => lognormal(&mut rng, route.cost, sigma),
            ServiceTime::Exponential => exponential(&mut rng, route.cost),
            ServiceTime::Fixed => route.cost,
        }
    };
    tokio::time::sleep(std::time::Duration::from_nanos(service.as_nanos())).await;
    // Errors under overload, judged as the request finishes.
    let waiting = state
        .admitted
        .load(Ordering::SeqCst)
        .saturating_sub(cfg.concurrency);
    let overloaded = waiting * 2 > cfg.queue_max;
    let failed = overloaded && {
        let mut rng = state
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bernoulli(&mut rng, cfg.overload_error_rate)
    };
    if failed {
        status(StatusCode::INTERNAL_SERVER_ERROR, "backend overloaded\n")
    } else {
        status(StatusCode::OK, "ok\n")
    }
}
