//! Requests in flight, in a slab with generation-checked ids.
//!
//! Messages carry a [`ReqId`] (8 bytes) instead of the request, which keeps
//! the kernel's queue entries small. A slot is reused only after both sides
//! are done with it: the client (answered, timed out, or gave up) and the
//! server (the gateway, backend or token service finished its work, which a
//! timed-out request still costs them).

use std::net::IpAddr;

use rampart_des::TimerId;
use rampart_time::Instant;

/// A request slot's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReqId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An API call to the backend.
    Api,
    /// A login at the token service.
    Login,
    /// A refresh-token exchange at the token service.
    Refresh,
}

/// Where a request is on the server side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A retry waiting for its backoff to end.
    NotSent,
    /// Waiting for a gateway worker.
    Queued,
    /// On a gateway worker.
    Cpu,
    /// At the backend or the token service.
    Upstream,
    /// The server side is finished.
    Done,
}

/// One attempt of one logical request.
#[derive(Clone, Debug)]
pub struct Req {
    /// Metrics class (0 = legit).
    pub class: u16,
    /// Traffic source index.
    pub source: u16,
    /// Account index within the source.
    pub account: u32,
    /// Route index within the source's mix.
    pub route: u16,
    /// Request template (for the inspector's verdict cache).
    pub template: u16,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
    /// What it asks for.
    pub kind: Kind,
    /// Client address.
    pub ip: IpAddr,
    /// When the logical request should have been sent: latency is measured
    /// from here, so a slow server cannot hide its queueing (no coordinated
    /// omission).
    pub intended_at: Instant,
    /// When this attempt reached the gateway.
    pub sent_at: Instant,
    /// When it entered the worker queue.
    pub enqueued_at: Instant,
    /// Gateway instance handling it.
    pub instance: u32,
    /// Server-side progress.
    pub stage: Stage,
    /// The gateway's verdict, set on a worker: `None` = forward.
    pub rejected: Option<u16>,
    /// The client's timeout timer.
    pub timeout: Option<TimerId>,
    /// Whether the client is finished with this attempt.
    pub client_done: bool,
    /// Closed-model user waiting on this request, if any.
    pub user: Option<u32>,
    /// The server's Retry-After on a 429.
    pub retry_after: Option<rampart_time::Duration>,
    /// The API route to call once this login or refresh succeeds.
    pub then: Option<u16>,
    /// The backoff before this attempt (decorrelated jitter needs it).
    pub last_backoff: Option<rampart_time::Duration>,
    /// The attacker that sent it, or `NO_ATTACKER` for legit traffic.
    pub attacker: u16,
    /// Attacker-specific: leaked-list entry, forged token, payload or own
    /// account index.
    pub payload: u32,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    req: Option<Req>,
}

/// The slab.
#[derive(Debug, Default)]
pub struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    /// Stores a request.
    pub fn insert(&mut self, req: Req) -> ReqId {
        self.live += 1;
        match self.free.pop() {
            Some(index) => {
                let s = &mut self.slots[index as usize];
                debug_assert!(s.req.is_none());
                s.req = Some(req);
                ReqId {
                    index,
                    generation: s.generation,
                }
            }
            None => {
                let index =
                    u32::try_from(self.slots.len()).expect("fewer than 2^32 requests in flight");
                self.slots.push(Slot {
                    generation: 0,
                    req: Some(req),
                });
                ReqId {
                    index,
                    generation: 0,
                }
            }
        }
    }

    /// The request, if the id is still current.
    #[inline]
    pub fn get(&self, id: ReqId) -> Option<&Req> {
        let s = self.slots.get(id.index as usize)?;
        if s.generation == id.generation {
            s.req.as_ref()
        } else {
            None
        }
    }

    /// The request, mutably, if the id is still current.
    #[inline]
    pub fn get_mut(&mut self, id: ReqId) -> Option<&mut Req> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation == id.generation {
            s.req.as_mut()
        } else {
            None
        }
    }

    /// Frees the slot once both sides are done; returns whether it did.
    pub fn release_if_done(&mut self, id: ReqId) -> bool {
        let s = &mut self.slots[id.index as usize];
        debug_assert_eq!(s.generation, id.generation, "releasing a stale id");
        let done = s
            .req
            .as_ref()
            .is_some_and(|r| r.client_done && r.stage == Stage::Done);
        if done {
            s.req = None;
            s.generation = s.generation.wrapping_add(1);
            self.free.push(id.index);
            self.live -= 1;
        }
        done
    }

    /// Slots in use.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Attempts sent whose client still waits on them, and retries waiting
    /// for their backoff (not sent yet). A scan: for checks, not hot paths.
    pub fn client_counts(&self) -> (u64, u64) {
        let (mut pending, mut waiting) = (0, 0);
        for r in self.slots.iter().filter_map(|s| s.req.as_ref()) {
            if r.client_done {
                continue;
            }
            if r.stage == Stage::NotSent {
                waiting += 1
            } else {
                pending += 1
            }
        }
        (pending, waiting)
    }
}
