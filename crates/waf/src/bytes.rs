//! Byte searches over request bytes, on `memchr` (SIMD where the CPU has it).

/// The pieces of `hay` between occurrences of `sep`, as `<[u8]>::split`
/// yields them (an empty `hay` gives one empty piece, a trailing `sep` a
/// trailing empty one), each separator found by `memchr`.
pub(crate) fn split(hay: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(sep, r) {
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
    }
}
