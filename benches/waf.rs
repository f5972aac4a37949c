// Placeholder until the crate lands; replaced by its bench.
fn main() {}
