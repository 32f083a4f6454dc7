//! The `stepscope` binary.
fn main() {}
