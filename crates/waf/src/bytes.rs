//! Byte searches over request bytes, on `memchr` (SIMD where the CPU has it).
//! Every search reports the bytes it reads to [`crate::work`], so the work
//! counter sees a search that runs over the same bytes again and again.

use crate::work;

/// The first `a` in `hay`.
#[inline]
pub(crate) fn find(a: u8, hay: &[u8]) -> Option<usize> {
    forward(hay, memchr::memchr(a, hay))
}

/// The first `a` or `b` in `hay`.
#[inline]
pub(crate) fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    forward(hay, memchr::memchr2(a, b, hay))
}

/// The first `a`, `b` or `c` in `hay`.
#[inline]
pub(crate) fn find3(a: u8, b: u8, c: u8, hay: &[u8]) -> Option<usize> {
    forward(hay, memchr::memchr3(a, b, c, hay))
}

/// The last `a` in `hay`.
#[inline]
pub(crate) fn rfind(a: u8, hay: &[u8]) -> Option<usize> {
    let hit = memchr::memrchr(a, hay);
    work::touch(hit.map_or(hay.len(), |p| hay.len() - p));
    hit
}

/// Whether every byte of `hay` is ASCII.
#[inline]
pub(crate) fn is_ascii(hay: &[u8]) -> bool {
    work::touch(hay.len());
    hay.is_ascii()
}

/// A forward search read the bytes up to its hit, or all of them.
#[inline]
fn forward(hay: &[u8], hit: Option<usize>) -> Option<usize> {
    work::touch(hit.map_or(hay.len(), |p| p + 1));
    hit
}

/// The pieces of `hay` between occurrences of `sep`, as `<[u8]>::split`
/// yields them (an empty `hay` gives one empty piece, a trailing `sep` a
/// trailing empty one), each separator found by `memchr`.
pub(crate) fn split(hay: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(sep, r) {
            Some(p) => {
                rest = Some(&r[p + 1..]);
                Some(&r[..p])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `split` yields exactly the pieces `<[u8]>::split` yields.
        #[test]
        fn memchr_split_yields_the_pieces_of_the_slice_split(
            hay in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b'&'),
                proptest::prelude::Just(b'a'),
                proptest::prelude::any::<u8>(),
            ], 0..40),
        ) {
            let ours: Vec<&[u8]> = split(&hay, b'&').collect();
            let std: Vec<&[u8]> = hay.split(|&b| b == b'&').collect();
            proptest::prop_assert_eq!(ours, std);
        }

        /// A search reports the bytes up to its hit (from the end for the
        /// reverse one), or all of them, and splitting reports each byte
        /// once.
        #[test]
        fn searches_report_the_bytes_they_read(
            hay in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b'&'),
                proptest::prelude::Just(b'a'),
            ], 0..40),
        ) {
            let (hit, n) = work::touched_by(|| find(b'&', &hay));
            proptest::prop_assert_eq!(n as usize, hit.map_or(hay.len(), |p| p + 1));
            let (hit, n) = work::touched_by(|| rfind(b'&', &hay));
            proptest::prop_assert_eq!(n as usize, hit.map_or(hay.len(), |p| hay.len() - p));
            let (_, n) = work::touched_by(|| split(&hay, b'&').count());
            proptest::prop_assert_eq!(n as usize, hay.len());
        }
    }
}
