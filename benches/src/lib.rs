//! criterion micro-benchmarks of PocketBun's hot paths; the benches live in `benches/`.
//! Run them with `cargo bench -p pocketbun-benches` (a few minutes in all).
