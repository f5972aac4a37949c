//! An independent count of the work an inspection does: the bytes handed to
//! the matching engines and scanners, counted where they are handed over.
//!
//! [`Cost`](crate::Cost) is the inspector's own bookkeeping, and the
//! simulator charges CPU from it, so a test that checks the linear-time
//! claim, or checks that `Cost` is honest, needs a figure the bookkeeping
//! does not produce. Each call site that gives a haystack to an engine
//! reports the bytes that engine reads:
//! * a `memchr`-family search (through [`crate::bytes`]): the bytes up to
//!   and including its hit, or the whole haystack when there is none, so a
//!   loop that searches the same bytes again and again shows up;
//! * a regex or regex-set search and the trigger walk: the haystack;
//! * a decoding pass, JSON unescaping, a base64 attempt, the JSON structure
//!   scan and the SSRF authority scans: the bytes they walk;
//! * a full comparison in the per-request memo of values: the value.
//!
//! The count lives in a thread-local and exists only in this crate's unit
//! tests (`tests.rs` beside this file holds the properties it checks);
//! elsewhere [`touch`] compiles to nothing.

#[cfg(test)]
mod tests;

#[cfg(test)]
thread_local! {
    /// Bytes reported on this thread since it started (one inspection runs
    /// on one thread, so concurrent tests do not mix their counts).
    static TOUCHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Reports `n` bytes read by an engine.
#[inline(always)]
pub(crate) fn touch(n: usize) {
    #[cfg(test)]
    TOUCHED.with(|t| t.set(t.get().saturating_add(n as u64)));
    #[cfg(not(test))]
    let _ = n;
}

/// Runs `f` and returns its result with the bytes the engines read during
/// it (on this thread).
#[cfg(test)]
pub(crate) fn touched_by<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = TOUCHED.with(std::cell::Cell::get);
    let r = f();
    let after = TOUCHED.with(std::cell::Cell::get);
    (r, after - before)
}
