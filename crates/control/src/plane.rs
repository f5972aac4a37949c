//! The plane: what every instance should hold, and who holds it.
//!
//! [`Plane`] is the state machine: the desired policy and its rollout, the
//! JWKS version, and one [`AgentView`] per instance (its session, what it
//! attests, when it was last heard). From these it answers the balancer
//! ([`Plane::is_routable`]) and the drift detector ([`Plane::drift`]), and
//! for each session it computes what to push ([`Plane::outbox`]). Revocations
//! are not copied here: the token service's log is the one source, read
//! through [`Source`]. [`PlaneServer`] runs the state machine over TCP.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rampart_auth::RevocationDelta;
use rampart_time::{Duration, Instant};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::policy::{PolicyBundle, PolicyHash};
use crate::proto::{Attestation, Hello, Link, Status, ToAgent, ToPlane, Versions};

/// The plane's timing and bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaneConfig {
    /// Each side sends at least this often, heartbeats when idle.
    pub heartbeat: Duration,
    /// A connection silent this long is closed: on a clogged link TCP never
    /// fails by itself, so silence is the only sign.
    pub idle_timeout: Duration,
    /// An instance not heard for this long is not routable. A host that
    /// fences itself (stops serving) when its lease runs out, as the tests'
    /// gateways do, lets a rotation treat an instance silent for longer as
    /// not serving; the live gateway does not fence (its verifier's stale
    /// policy decides).
    pub lease: Duration,
    /// After a rollout the previous policy stays routable this long, time
    /// for every connected instance to load the new one.
    pub rollout_grace: Duration,
    /// Instances tracked; a hello from an unknown instance past it is
    /// refused (the agent retries with backoff), counted in
    /// [`PlaneStats::refused_over_cap`]. Connections are capped at twice this.
    pub instances_max: usize,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        PlaneConfig {
            heartbeat: Duration::from_millis(250),
            idle_timeout: Duration::from_secs(1),
            lease: Duration::from_secs(2),
            rollout_grace: Duration::from_secs(5),
            instances_max: 1024,
        }
    }
}

/// Where revocations and keys come from: the token service.
pub trait Source: Send + Sync + 'static {
    /// The plane's clock.
    fn now(&self) -> Instant;
    /// The revocation log's version.
    fn revocation_version(&self) -> u64;
    /// The live entries after `version`.
    fn revocations_since(&self, version: u64) -> RevocationDelta;
    /// The JWKS document now.
    fn jwks(&self) -> String;
}

/// What the plane knows of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    /// The session that last said hello; frames of older sessions are
    /// ignored.
    pub session: u64,
    /// The instance's incarnation in that hello.
    pub incarnation: u64,
    /// What it last reported.
    pub status: Status,
    /// When it was last heard.
    pub heard_at: Instant,
    /// Whether that session is open.
    pub connected: bool,
}

/// An instance whose policy is not the desired one past the grace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The instance.
    pub instance: u32,
    /// What it attests (`None`: no policy at all).
    pub attested: Option<Attestation>,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlaneStats {
    /// Sessions opened.
    pub sessions: u64,
    /// Hellos refused at [`PlaneConfig::instances_max`].
    pub refused_over_cap: u64,
    /// Hellos refused because a later incarnation is connected.
    pub refused_stale: u64,
    /// Connections dropped at the connection cap.
    pub refused_connections: u64,
    /// Revocation deltas pushed.
    pub revocation_pushes: u64,
    /// Policy bundles pushed.
    pub policy_pushes: u64,
    /// JWKS documents pushed.
    pub jwks_pushes: u64,
}

/// One open session: what has been sent on it.
#[derive(Clone, Debug)]
pub struct Session {
    id: u64,
    instance: u32,
    sent_revocation: u64,
    sent_jwks: u64,
    sent_policy: Option<PolicyHash>,
    resynced: bool,
    echo: u64,
}

impl Session {
    /// The instance this session speaks for.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The last status report its heartbeats echo (0: none).
    pub fn echo(&self) -> u64 {
        self.echo
    }

    /// What has been sent on it, as the heartbeat reports it: an agent
    /// holding less revocation or JWKS state than this missed a frame.
    pub fn sent(&self) -> Versions {
        Versions {
            revocation: self.sent_revocation,
            jwks: self.sent_jwks,
        }
    }
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// [`PlaneConfig::instances_max`] instances are already tracked.
    #[error("the plane tracks its maximum of instances")]
    OverCap,
    /// A later incarnation of the instance is connected.
    #[error("a later run of this instance is connected")]
    Stale,
}

#[derive(Clone, Debug)]
struct Rollout {
    bundle: PolicyBundle,
    at: Instant,
    previous: Option<PolicyHash>,
    /// `None`: pushed to every instance. Otherwise staged: pushed only to
    /// the instances released so far, each from when it was.
    released: Option<BTreeMap<u32, Instant>>,
}

impl Rollout {
    /// When the bundle was pushed toward `instance`: the rollout's start,
    /// or for a staged one its release (`None`: not yet released).
    fn pushed_at(&self, instance: u32) -> Option<Instant> {
        match &self.released {
            None => Some(self.at),
            Some(released) => released.get(&instance).copied(),
        }
    }
}

/// The plane's state machine.
#[derive(Debug)]
pub struct Plane {
    config: PlaneConfig,
    rollout: Option<Rollout>,
    jwks_version: u64,
    jwks: String,
    agents: BTreeMap<u32, AgentView>,
    next_session: u64,
    stats: PlaneStats,
}

impl Plane {
    /// A plane with no policy and no keys yet.
    pub fn new(config: PlaneConfig) -> Plane {
        Plane {
            config,
            rollout: None,
            jwks_version: 0,
            jwks: String::new(),
            agents: BTreeMap::new(),
            next_session: 0,
            stats: PlaneStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PlaneConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &PlaneStats {
        &self.stats
    }

    /// Every instance ever heard, by index.
    pub fn agents(&self) -> &BTreeMap<u32, AgentView> {
        &self.agents
    }

    /// The desired policy.
    pub fn desired(&self) -> Option<&PolicyBundle> {
        self.rollout.as_ref().map(|r| &r.bundle)
    }

    /// The current JWKS version (0: none yet).
    pub fn jwks_version(&self) -> u64 {
        self.jwks_version
    }

    /// Starts a rollout of `bundle`: pushed to every session at once; the
    /// policy it replaces stays routable for the grace. If no instance ever
    /// attested the policy being replaced (a bundle none could load), the
    /// grace keeps covering the one before it, which the fleet still runs.
    pub fn publish_policy(&mut self, now: Instant, bundle: PolicyBundle) {
        self.start_rollout(now, bundle, None);
    }

    /// Starts a staged rollout: `bundle` becomes the desired policy (what
    /// routing and drift compare with) but is pushed to an instance only
    /// once [`release`](Self::release)d for it, as a drift detector that
    /// remediates one instance at a time would.
    pub fn stage_policy(&mut self, now: Instant, bundle: PolicyBundle) {
        self.start_rollout(now, bundle, Some(BTreeMap::new()));
    }

    /// Lets the staged rollout reach `instance` (its current session and
    /// any later one). Returns whether that changed anything.
    pub fn release(&mut self, instance: u32, now: Instant) -> bool {
        if !self.agents.contains_key(&instance) {
            // Only tracked instances: the set stays within the cap.
            return false;
        }
        match self.rollout.as_mut().and_then(|r| r.released.as_mut()) {
            Some(released) if !released.contains_key(&instance) => {
                released.insert(instance, now);
                true
            }
            _ => false,
        }
    }

    fn start_rollout(
        &mut self,
        now: Instant,
        bundle: PolicyBundle,
        released: Option<BTreeMap<u32, Instant>>,
    ) {
        let previous = self.rollout.as_ref().and_then(|r| {
            let run = self
                .agents
                .values()
                .any(|a| a.status.policy.is_some_and(|p| p.hash == r.bundle.hash));
            if run { Some(r.bundle.hash) } else { r.previous }
        });
        self.rollout = Some(Rollout {
            bundle,
            at: now,
            previous,
            released,
        });
    }

    /// Records the token service's JWKS document; a changed document gets
    /// the next version. Returns whether it changed.
    pub fn set_jwks(&mut self, json: String) -> bool {
        if json == self.jwks {
            return false;
        }
        self.jwks = json;
        self.jwks_version += 1;
        true
    }

    /// Opens a session for `hello`. The newest session of an instance wins:
    /// a restarted instance's hello replaces what its earlier run reported.
    pub fn open(&mut self, now: Instant, hello: &Hello) -> Result<Session, Refused> {
        if self
            .agents
            .get(&hello.instance)
            .is_some_and(|a| a.connected && a.incarnation > hello.incarnation)
        {
            // An earlier run of an instance whose later run is connected: a
            // late hello, or a peer reusing its id.
            self.stats.refused_stale += 1;
            return Err(Refused::Stale);
        }
        if !self.agents.contains_key(&hello.instance)
            && self.agents.len() >= self.config.instances_max
        {
            // Room is made by forgetting instances gone longer than a lease.
            let lease = self.config.lease;
            self.agents
                .retain(|_, a| a.connected || now.saturating_since(a.heard_at) <= lease);
            if self.agents.len() >= self.config.instances_max {
                self.stats.refused_over_cap += 1;
                return Err(Refused::OverCap);
            }
        }
        self.next_session += 1;
        self.stats.sessions += 1;
        let id = self.next_session;
        self.agents.insert(
            hello.instance,
            AgentView {
                session: id,
                incarnation: hello.incarnation,
                status: hello.status.clone(),
                heard_at: now,
                connected: true,
            },
        );
        Ok(Session {
            id,
            instance: hello.instance,
            sent_revocation: hello.status.revocation_version,
            sent_jwks: hello.status.jwks_version,
            sent_policy: hello.status.policy.map(|a| a.hash),
            resynced: false,
            echo: 0,
        })
    }

    /// Records status report `seq` on `session`.
    pub fn on_status(&mut self, now: Instant, session: &mut Session, seq: u64, status: Status) {
        if let Some(a) = self.agents.get_mut(&session.instance)
            && a.session == session.id
        {
            // Only the current session's reports are echoed: a superseded
            // one must not keep renewing its agent's lease.
            session.echo = session.echo.max(seq);
            a.status = status;
            a.heard_at = now;
        }
    }

    /// Whether `session` is its instance's newest; a superseded session
    /// is ended by its server.
    pub fn is_current(&self, session: &Session) -> bool {
        self.agents
            .get(&session.instance)
            .is_some_and(|a| a.session == session.id)
    }

    /// Records that `session` closed.
    pub fn close(&mut self, session: &Session) {
        if let Some(a) = self.agents.get_mut(&session.instance)
            && a.session == session.id
        {
            a.connected = false;
        }
    }

    /// What to push on `session` now, oldest change first.
    pub fn outbox(&mut self, session: &mut Session, source: &dyn Source) -> Vec<ToAgent> {
        let mut out = Vec::new();
        let first = !session.resynced;
        let delta = if first {
            session.resynced = true;
            Some(resync(source, session.sent_revocation))
        } else if source.revocation_version() > session.sent_revocation {
            Some(source.revocations_since(session.sent_revocation))
        } else {
            None
        };
        if let Some(delta) = delta {
            session.sent_revocation = delta.version;
            for part in split(delta, REVOCATIONS_PER_FRAME) {
                self.stats.revocation_pushes += 1;
                out.push(ToAgent::Revocations(part));
            }
        }
        // The first batch always carries the JWKS: the agent's version may
        // come from an earlier run of the plane, whose numbering restarted.
        if self.jwks_version > 0 && (first || self.jwks_version > session.sent_jwks) {
            session.sent_jwks = self.jwks_version;
            self.stats.jwks_pushes += 1;
            out.push(ToAgent::Jwks {
                version: self.jwks_version,
                json: self.jwks.clone(),
            });
        }
        if let Some(r) = &self.rollout
            && session.sent_policy != Some(r.bundle.hash)
            && r.released
                .as_ref()
                .is_none_or(|released| released.contains_key(&session.instance))
        {
            session.sent_policy = Some(r.bundle.hash);
            self.stats.policy_pushes += 1;
            out.push(ToAgent::Policy(r.bundle.clone()));
        }
        out
    }

    /// The policy hashes an instance may serve under at `now` and be
    /// routed to: the desired one, and during the grace the one before.
    fn accepts(&self, now: Instant, instance: u32, hash: PolicyHash) -> bool {
        let Some(r) = &self.rollout else {
            return false;
        };
        hash == r.bundle.hash
            || (r.previous == Some(hash)
                && r.pushed_at(instance)
                    .is_none_or(|at| now < at + self.config.rollout_grace))
    }

    /// Whether the balancer may route to `instance` at `now`: its session
    /// is open, it was heard within the lease, and it attests the desired
    /// policy, or the one before it while its grace runs (from the rollout,
    /// or for a staged rollout from the instance's release; an instance not
    /// yet released keeps it).
    pub fn is_routable(&self, now: Instant, instance: u32) -> bool {
        self.agents.get(&instance).is_some_and(|a| {
            a.connected
                && now.saturating_since(a.heard_at) <= self.config.lease
                && a.status
                    .policy
                    .is_some_and(|p| self.accepts(now, instance, p.hash))
        })
    }

    /// Every routable instance, in index order.
    pub fn routable(&self, now: Instant) -> Vec<u32> {
        self.agents
            .keys()
            .copied()
            .filter(|&i| self.is_routable(now, i))
            .collect()
    }

    /// Connected instances that do not serve under the desired policy once
    /// its grace is over (at once for an instance a staged rollout has not
    /// released: the detector's cue): launched from a stale template, or
    /// failing to load the bundle.
    pub fn drift(&self, now: Instant) -> Vec<Drift> {
        let Some(r) = &self.rollout else {
            return Vec::new();
        };
        let grace = self.config.rollout_grace;
        self.agents
            .iter()
            .filter(|(i, a)| {
                a.connected
                    && a.status.policy.is_none_or(|p| p.hash != r.bundle.hash)
                    && r.pushed_at(**i).is_none_or(|at| now >= at + grace)
            })
            .map(|(&instance, a)| Drift {
                instance,
                attested: a.status.policy,
            })
            .collect()
    }
}

/// Revocation entries per frame: a whole log's resync is split so every
/// frame stays far below [`crate::proto::FRAME_BYTES_MAX`] (an entry is a
/// few hundred bytes of JSON at most).
pub const REVOCATIONS_PER_FRAME: usize = 4096;

/// Splits `delta` into consecutive deltas of at most `max` entries, each
/// following the one before, the last ending at `delta.version`.
pub fn split(delta: RevocationDelta, max: usize) -> Vec<RevocationDelta> {
    if delta.entries.len() <= max {
        return vec![delta];
    }
    let mut out = Vec::new();
    let mut since = delta.since_version;
    let n = delta.entries.len();
    let mut entries = delta.entries.into_iter().peekable();
    let mut taken = 0;
    while entries.peek().is_some() {
        let part: Vec<_> = entries.by_ref().take(max.max(1)).collect();
        taken += part.len();
        let version = if taken == n {
            delta.version
        } else {
            part.last().map_or(since, |e| e.version)
        };
        out.push(RevocationDelta {
            since_version: since,
            version,
            entries: part,
        });
        since = version;
    }
    out
}

/// The first delta of a session: everything after the version the agent
/// holds. (`since` is exclusive of the version it is given.)
fn resync(source: &dyn Source, held: u64) -> RevocationDelta {
    #[cfg(not(feature = "planted-resync-bug"))]
    let from = held;
    // The planted bug: after a reconnect the range starts one entry late,
    // while the delta still claims to follow `held`. An instance that
    // missed exactly that entry never learns of it.
    #[cfg(feature = "planted-resync-bug")]
    let from = if held > 0 { held + 1 } else { held };
    let mut delta = source.revocations_since(from);
    delta.since_version = held;
    delta
}

/// The plane on TCP: a task per agent connection, all sharing one [`Plane`].
pub struct PlaneServer<S> {
    plane: Mutex<Plane>,
    source: S,
    changed: Notify,
    connections: AtomicUsize,
}

impl<S> std::fmt::Debug for PlaneServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaneServer").finish_non_exhaustive()
    }
}

impl<S: Source> PlaneServer<S> {
    /// A server for `source`'s revocations and keys.
    pub fn new(config: PlaneConfig, source: S) -> Arc<PlaneServer<S>> {
        let mut plane = Plane::new(config);
        plane.set_jwks(source.jwks());
        Arc::new(PlaneServer {
            plane: Mutex::new(plane),
            source,
            changed: Notify::new(),
            connections: AtomicUsize::new(0),
        })
    }

    /// The state machine. Never held across an await.
    pub fn plane(&self) -> MutexGuard<'_, Plane> {
        self.plane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Rolls `bundle` out to every instance.
    pub fn publish_policy(&self, bundle: PolicyBundle) {
        let now = self.source.now();
        self.plane().publish_policy(now, bundle);
        self.changed.notify_waiters();
    }

    /// Stages `bundle` (see [`Plane::stage_policy`]).
    pub fn stage_policy(&self, bundle: PolicyBundle) {
        let now = self.source.now();
        self.plane().stage_policy(now, bundle);
    }

    /// Releases the staged rollout to `instance` (see [`Plane::release`]).
    pub fn release(&self, instance: u32) {
        let now = self.source.now();
        if self.plane().release(instance, now) {
            self.changed.notify_waiters();
        }
    }

    /// Pushes what changed at the source: call after a revocation or a key
    /// change (the server also looks at every heartbeat).
    pub fn poke(&self) {
        let jwks = self.source.jwks();
        self.plane().set_jwks(jwks);
        self.changed.notify_waiters();
    }

    /// Accepts agents on `listener` until the task is dropped, which ends
    /// every session it started.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        let ticker = tokio::spawn({
            let server = Arc::clone(&self);
            async move {
                let beat = std_duration(server.plane().config().heartbeat);
                loop {
                    tokio::time::sleep(beat).await;
                    server.poke();
                }
            }
        });
        let _stop_ticker = AbortOnDrop(ticker);
        let mut sessions: Vec<AbortOnDrop> = Vec::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, an aborted handshake: the plane
                    // keeps serving the sessions it has and tries again.
                    tracing::warn!(error = %e, "control plane: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let cap = self.plane().config().instances_max.saturating_mul(2);
            if self.connections.load(Ordering::Relaxed) >= cap {
                self.plane().stats.refused_connections += 1;
                drop(stream);
                continue;
            }
            let counted = Counted::new(Arc::clone(&self));
            sessions.retain(|s| !s.0.is_finished());
            sessions.push(AbortOnDrop(tokio::spawn(async move {
                counted.0.session(stream).await;
            })));
        }
    }

    async fn session(&self, stream: TcpStream) {
        let config = self.plane().config().clone();
        let idle = std_duration(config.idle_timeout);
        let beat = std_duration(config.heartbeat);
        let mut link = Link::new(stream);
        let hello = match tokio::time::timeout(idle, link.recv::<ToPlane>()).await {
            Ok(Ok(Some(ToPlane::Hello(hello)))) => hello,
            _ => return,
        };
        let opened = self.plane().open(self.source.now(), &hello);
        let Ok(mut session) = opened else {
            return;
        };
        // A task dropped mid-session (its node killed) still closes it.
        let closer = CloseOnDrop {
            server: self,
            session: session.clone(),
        };
        let mut heard = tokio::time::Instant::now();
        let mut next_beat = heard + beat;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the outbox is read, so a change made while
            // this task pushes is not missed.
            changed.as_mut().enable();
            let out = self.plane().outbox(&mut session, &self.source);
            if !send_all(&mut link, &out, idle).await {
                break;
            }
            if !self.plane().is_current(&session) {
                // A newer session of the same instance took over.
                break;
            }
            tokio::select! {
                biased;
                msg = link.recv::<ToPlane>() => match msg {
                    Ok(Some(ToPlane::Status { seq, status })) => {
                        heard = tokio::time::Instant::now();
                        self.plane().on_status(self.source.now(), &mut session, seq, status);
                    }
                    // A second hello, a bad frame, an error or the end.
                    _ => break,
                },
                () = tokio::time::sleep_until(heard + idle) => break,
                () = tokio::time::sleep_until(next_beat) => {
                    next_beat = tokio::time::Instant::now() + beat;
                    let beat_msg = ToAgent::Heartbeat { sent: session.sent(), echo: session.echo };
                    if !send_all(&mut link, std::slice::from_ref(&beat_msg), idle).await {
                        break;
                    }
                }
                () = &mut changed => {}
            }
        }
        drop(closer);
    }
}

struct CloseOnDrop<'a, S: Source> {
    server: &'a PlaneServer<S>,
    session: Session,
}

impl<S: Source> Drop for CloseOnDrop<'_, S> {
    fn drop(&mut self) {
        self.server.plane().close(&self.session);
    }
}

/// Sends every message, each within `limit`: a peer that stops reading
/// fills the socket's buffers, and the session ends instead of hanging.
pub(crate) async fn send_all<S, T>(
    link: &mut Link<S>,
    msgs: &[T],
    limit: std::time::Duration,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: Serialize,
{
    for m in msgs {
        match tokio::time::timeout(limit, link.send(m)).await {
            Ok(Ok(())) => {}
            _ => return false,
        }
    }
    true
}

pub(crate) fn std_duration(d: Duration) -> std::time::Duration {
    std::time::Duration::from_nanos(d.as_nanos())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

/// One open connection, counted from before its task is spawned until the
/// task ends or is dropped unpolled.
struct Counted<S: Source>(Arc<PlaneServer<S>>);

impl<S: Source> Counted<S> {
    fn new(server: Arc<PlaneServer<S>>) -> Counted<S> {
        server.connections.fetch_add(1, Ordering::Relaxed);
        Counted(server)
    }
}

impl<S: Source> Drop for Counted<S> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
