//! Traffic sources: populations of accounts that send requests, following
//! an open arrival process, a closed model of users with think time, or a
//! replayed trace. The *when* and *what* come from `rampart-traffic`; this
//! module holds the per-account session state (tokens) and the source's
//! random stream.

use std::net::IpAddr;
use std::sync::Arc;

use rampart_auth::{TokenPair, TokenService};
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_time::{Duration, Instant};
use rampart_traffic::{
    Arrivals, Model, Route, RouteId, RouteMix, TraceCursor, TrafficSpec, compile_trace, parse_trace,
};

use crate::error::BuildError;
use crate::slab::Kind;
use crate::world::{Msg, ip_for};

/// A client session's state.
#[derive(Clone, Debug)]
pub struct Account {
    /// Login name.
    pub subject: String,
    /// Password (legit clients know theirs).
    pub password: Vec<u8>,
    /// The current access token, if any. Shared: every gateway's verified-
    /// token cache keeps a reference to this allocation instead of a copy.
    pub access: Option<Arc<str>>,
    /// When the access token expires (Unix-time instant).
    pub access_exp: Instant,
    /// The current refresh token, if any.
    pub refresh: Option<String>,
    /// The session (`sid`) of the current tokens, for admin revocations.
    pub sid: String,
    /// The client's address, derived once from the source name and index:
    /// deriving it per request formatted and hashed a string every time.
    pub ip: IpAddr,
}

impl Account {
    /// Keeps a fresh token pair.
    pub fn store(&mut self, pair: TokenPair, access_ttl: Duration, unix_now: Instant) {
        self.sid = pair.access_claims.sid;
        self.access = Some(pair.access.into());
        self.refresh = Some(pair.refresh);
        self.access_exp = unix_now + access_ttl;
    }

    /// Drops the access token after a 401 that says it is dead for good
    /// (revoked, or signed by a withdrawn key): the next call refreshes, and
    /// logs in if the refresh fails too, as an OAuth client does.
    pub fn drop_access(&mut self) {
        self.access = None;
        self.access_exp = Instant::ZERO;
    }

    /// Forgets the session (a refresh failed: log in again).
    pub fn clear(&mut self) {
        self.access = None;
        self.refresh = None;
        self.access_exp = Instant::ZERO;
    }
}

/// Clients refresh this long before their access token expires, as OAuth
/// client libraries do, so a request never leaves with a token about to die.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// Accounts a source may hold: the population is materialised at setup.
pub const ACCOUNTS_MAX: u32 = 1_000_000;

/// Where arrivals come from.
#[derive(Debug)]
enum Driver {
    Open(Arrivals),
    Closed { users: u32 },
    Trace(TraceCursor),
}

/// One `[[traffic]]` source.
#[derive(Debug)]
pub struct Source {
    /// Metrics class (0 for legit traffic).
    pub class: u16,
    /// The spec it was built from.
    pub spec: TrafficSpec,
    mix: RouteMix,
    driver: Driver,
    accounts: Vec<Account>,
    /// The source's random stream.
    pub rng: ActorRng,
    start: Instant,
    end: Option<Instant>,
    /// An attacker's source holds tokens it did not get by signing in
    /// (stolen or forged): it never logs in or refreshes, and replays what
    /// it holds whatever the answer.
    pub token_only: bool,
}

impl Source {
    /// Builds source `index` and registers its accounts with the token
    /// service. `path` is the configuration entry it comes from, such as
    /// `traffic[2]`, for errors.
    pub fn new(
        index: u16,
        path: &str,
        spec: TrafficSpec,
        seed: u64,
        tokens: &mut TokenService,
    ) -> Result<Source, BuildError> {
        let mix = RouteMix::new(spec.routes.clone()).map_err(|errors| BuildError::Routes {
            path: format!("{path}.routes"),
            errors,
        })?;
        let start = Instant::ZERO + spec.start.unwrap_or(Duration::ZERO);
        let end = spec.end.map(|e| Instant::ZERO + e);
        let mut n_accounts = spec.accounts.max(1);
        let driver = match &spec.model {
            Model::Open { shape, process } => {
                Driver::Open(Arrivals::new(shape, *process, start, end))
            }
            Model::Closed(c) => Driver::Closed { users: c.users },
            model @ Model::Trace { path: file, .. } => {
                // The driver (the CLI) reads `path` and hands the text over:
                // the world never touches the file system.
                let Some(text) = model.trace_text() else {
                    return Err(BuildError::TraceNotLoaded {
                        path: format!("{path}.model"),
                        file: file.clone(),
                    });
                };
                let trace_error = |errors: Vec<rampart_traffic::TraceError>| BuildError::Trace {
                    path: format!("{path}.model.csv"),
                    errors,
                };
                let rows = parse_trace(text).map_err(trace_error)?;
                let (events, clients) = compile_trace(&rows, &mix).map_err(trace_error)?;
                n_accounts = n_accounts.max(clients);
                Driver::Trace(TraceCursor::new(events, start, end))
            }
            other => {
                return Err(BuildError::UnsupportedModel {
                    path: format!("{path}.model"),
                    model: Box::new(other.clone()),
                });
            }
        };
        if n_accounts > ACCOUNTS_MAX {
            return Err(BuildError::TooManyAccounts {
                path: format!("{path}.accounts"),
                max: ACCOUNTS_MAX,
            });
        }
        let mut accounts = Vec::with_capacity(n_accounts as usize);
        for i in 0..n_accounts {
            let subject = format!("{}-{i}", spec.name);
            let password = format!("pw-{}-{i}", spec.name).into_bytes();
            let mut salt = [0u8; 16];
            salt[..4].copy_from_slice(&i.to_le_bytes());
            salt[4..6].copy_from_slice(&index.to_le_bytes());
            tokens
                .register_account(&subject, &password, salt)
                .map_err(|source| BuildError::Account {
                    path: format!("{path}.accounts"),
                    source,
                })?;
            accounts.push(Account {
                subject,
                password,
                access: None,
                access_exp: Instant::ZERO,
                refresh: None,
                sid: String::new(),
                ip: ip_for(&spec.name, i),
            });
        }
        let rng = actor_rng(seed, &format!("traffic/{}", spec.name));
        Ok(Source {
            class: 0,
            spec,
            mix,
            driver,
            accounts,
            rng,
            start,
            end,
            token_only: false,
        })
    }

    /// An attacker's source (see [`Source::token_only`]): the spec names
    /// its rate, routes and address pool (one account per address); its
    /// accounts are not registered with the real token service. `path` is
    /// the attacker's configuration entry, for errors.
    pub fn attacker(
        index: u16,
        path: &str,
        spec: TrafficSpec,
        seed: u64,
    ) -> Result<Source, BuildError> {
        let mut scratch = TokenService::new(rampart_auth::ServiceConfig {
            password: rampart_auth::PasswordConfig {
                mode: rampart_auth::PasswordMode::Modelled,
                ..rampart_auth::PasswordConfig::default()
            },
            ..rampart_auth::ServiceConfig::default()
        });
        let mut s = Source::new(index, path, spec, seed, &mut scratch)?;
        s.token_only = true;
        Ok(s)
    }

    /// Signs every account in before the run: sessions issued at ages spread
    /// uniformly over one access-token lifetime, from a stream of their own.
    pub fn warm_sessions(
        &mut self,
        tokens: &mut TokenService,
        unix0: Instant,
        access_ttl: Duration,
        seed: u64,
    ) -> Result<(), BuildError> {
        let mut rng = actor_rng(seed, &format!("sessions/{}", self.spec.name));
        for a in &mut self.accounts {
            let age = rng::uniform_duration(&mut rng, Duration::ZERO, access_ttl);
            let issued = unix0 - age;
            let pair = tokens.issue(issued, &a.subject, "api").map_err(|source| {
                BuildError::WarmSession {
                    traffic: self.spec.name.clone(),
                    source,
                }
            })?;
            a.store(pair, access_ttl, issued);
        }
        Ok(())
    }

    /// The first events this source needs.
    pub fn initial_events(&mut self, index: u16, out: &mut Vec<(Instant, Msg)>) {
        match &mut self.driver {
            Driver::Open(a) => {
                if let Some(t) = a.next(self.start, &mut self.rng) {
                    out.push((t, Msg::Arrival { source: index }));
                }
            }
            Driver::Closed { users } => {
                // Users start spread over one think time, not all at once.
                for user in 0..*users {
                    let offset = self.think_inner();
                    out.push((
                        self.start + offset,
                        Msg::UserNext {
                            source: index,
                            user,
                        },
                    ));
                }
            }
            Driver::Trace(c) => {
                if let Some(t) = c.peek_time() {
                    out.push((t, Msg::TraceNext { source: index }));
                }
            }
        }
    }

    /// The next open-model arrival after `now`.
    pub fn next_arrival(&mut self, now: Instant) -> Option<Instant> {
        match &mut self.driver {
            Driver::Open(a) => a.next(now, &mut self.rng),
            _ => None,
        }
    }

    /// Whether the source still sends at `now`.
    pub fn active(&self, now: Instant) -> bool {
        now >= self.start && self.end.is_none_or(|e| now < e)
    }

    /// A random account and route.
    pub fn pick(&mut self) -> (u32, u16) {
        let account = rng::uniform_u64(&mut self.rng, 0, self.accounts.len() as u64) as u32;
        let route = self.mix.pick(&mut self.rng).0;
        (account, route)
    }

    /// A closed-model user's next request: user `u` is account `u` (mod the
    /// population), so each user keeps one session.
    pub fn pick_for_user(&mut self, user: u32) -> (u32, u16) {
        let account = user % self.accounts.len() as u32;
        let route = self.mix.pick(&mut self.rng).0;
        (account, route)
    }

    /// Rows of a trace due at `now`, as (account, route).
    pub fn trace_due(&mut self, now: Instant) -> Vec<(u32, u16)> {
        let Driver::Trace(c) = &mut self.driver else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while c.peek_time().is_some_and(|t| t <= now) {
            let (_, e) = c.next_event().expect("peeked");
            // Trace clients were numbered in order of appearance, and the
            // population holds at least that many accounts.
            out.push((e.client, e.route.0));
        }
        out
    }

    /// When the next trace row is due.
    pub fn trace_next_at(&self) -> Option<Instant> {
        match &self.driver {
            Driver::Trace(c) => c.peek_time(),
            _ => None,
        }
    }

    /// A route of the mix.
    #[inline]
    pub fn route(&self, id: u16) -> &Route {
        self.mix.route(RouteId(id))
    }

    /// The mix's login route, if it has one.
    pub fn login_route(&self) -> Option<u16> {
        self.mix.login().map(|r| r.0)
    }

    /// Number of routes.
    pub fn n_routes(&self) -> usize {
        self.mix.len()
    }

    /// Accounts in the population.
    pub fn n_accounts(&self) -> u32 {
        self.accounts.len() as u32
    }

    /// All accounts, in index order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// An account.
    #[inline]
    pub fn account(&self, i: u32) -> &Account {
        &self.accounts[i as usize]
    }

    /// An account, mutably.
    pub fn account_mut(&mut self, i: u32) -> &mut Account {
        &mut self.accounts[i as usize]
    }

    /// The client address of an account.
    pub fn ip_of(&self, account: u32) -> IpAddr {
        self.accounts[account as usize].ip
    }

    /// What an authenticated call needs first: nothing, a refresh, or a login.
    pub fn auth_step(&self, account: u32, unix_now: Instant) -> Kind {
        let a = &self.accounts[account as usize];
        if self.token_only {
            return Kind::Api;
        }
        if a.access.is_some() && unix_now + REFRESH_MARGIN < a.access_exp {
            Kind::Api
        } else if a.refresh.is_some() {
            Kind::Refresh
        } else {
            Kind::Login
        }
    }

    /// The client's timeout per attempt.
    pub fn timeout(&self) -> Duration {
        self.spec.timeout.0
    }

    /// The backoff before attempt `attempt + 1`, or `None` to give up.
    pub fn retry_delay(
        &mut self,
        attempt: u32,
        previous: Option<Duration>,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        self.spec
            .retry
            .next_delay(attempt, previous, retry_after, &mut self.rng)
    }

    /// A closed-model user's think time.
    pub fn think(&mut self) -> Duration {
        self.think_inner()
    }

    fn think_inner(&mut self) -> Duration {
        match &self.spec.model {
            Model::Closed(c) => c.think(&mut self.rng),
            _ => Duration::ZERO,
        }
    }
}
