//! The wire protocol between the plane and its agents.
//!
//! One TCP connection per agent carries length-prefixed frames (tokio-util's
//! `LengthDelimitedCodec`, a 4-byte big-endian length) of JSON messages. The
//! agent speaks first with a [`Hello`]; after it, each side sends whenever it
//! has something to say and at least once per heartbeat, so silence is what
//! detects a partition: a clogged link delays TCP data but never breaks the
//! connection.

use std::fmt;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rampart_auth::RevocationDelta;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::policy::{PolicyBundle, PolicyHash};

/// Largest frame either side accepts. A policy bundle is the largest
/// message; a bigger frame is a protocol error that closes the connection.
pub const FRAME_BYTES_MAX: usize = 4 << 20;

/// What an agent holds: the versions it has applied and the policy it serves
/// under, as it attests it (the hash of the bundle in use, not of one it was
/// sent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The revocation version its verifier holds.
    pub revocation_version: u64,
    /// The JWKS version it applied (0: none from this plane yet).
    pub jwks_version: u64,
    /// The policy in use, if any.
    pub policy: Option<Attestation>,
}

/// A policy an instance serves under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The bundle's version.
    pub version: u64,
    /// SHA-256 of the bundle's text.
    pub hash: PolicyHash,
}

/// The first frame of every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The instance's index in the fleet.
    pub instance: u32,
    /// Bumped on every start of the instance: a restarted instance holds
    /// nothing its earlier run applied.
    pub incarnation: u64,
    /// What it holds now.
    pub status: Status,
}

/// Agent to plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToPlane {
    /// Opens a session; only as the first frame.
    Hello(Hello),
    /// What the agent holds; sent after each change and at every heartbeat.
    Status {
        /// Numbers the reports of a session, so the plane's heartbeat can
        /// say which it has seen.
        seq: u64,
        /// What the agent holds.
        status: Status,
    },
}

/// Versions of the plane's state: in a heartbeat, what it has sent on the
/// session, so an agent holding less sees a frame went missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// The revocation log's version.
    pub revocation: u64,
    /// The JWKS version.
    pub jwks: u64,
}

/// Plane to agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToAgent {
    /// Revocations since the version the delta names.
    Revocations(RevocationDelta),
    /// The token service's key set.
    Jwks {
        /// The plane's version of this document.
        version: u64,
        /// The JWKS document (RFC 7517).
        json: String,
    },
    /// The policy bundle to serve under.
    Policy(PolicyBundle),
    /// Liveness: what the plane has sent on this session, and the last
    /// status report it received. The agent's lease runs from when it sent
    /// that report, not from when the heartbeat arrived: a heartbeat delayed
    /// on a clogged link then renews nothing it should not.
    Heartbeat {
        /// Versions sent on this session so far.
        sent: Versions,
        /// The `seq` of the last status received (0: none yet).
        echo: u64,
    },
}

/// A protocol failure. Every one closes the connection; the agent
/// reconnects and resyncs.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The socket failed or the frame was over [`FRAME_BYTES_MAX`].
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The frame was not a message of the protocol.
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// A framed connection carrying `In` one way and `Out` the other.
pub struct Link<S> {
    framed: Framed<S, LengthDelimitedCodec>,
}

impl<S> fmt::Debug for Link<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    /// Frames `io`.
    pub fn new(io: S) -> Link<S> {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(FRAME_BYTES_MAX)
            .new_codec();
        Link {
            framed: Framed::new(io, codec),
        }
    }

    /// Sends one message and flushes it.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), LinkError> {
        let bytes = serde_json::to_vec(msg)?;
        self.framed.send(Bytes::from(bytes)).await?;
        Ok(())
    }

    /// The next message, or `None` at a clean end of stream. Cancel-safe: a
    /// partly read frame stays buffered, so this can sit in a `select!`.
    pub async fn recv<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, LinkError> {
        match self.framed.next().await {
            None => Ok(None),
            Some(frame) => Ok(Some(serde_json::from_slice(&frame?)?)),
        }
    }
}
