//! The short fuzz run on stable shared by `http`, `query` and `engine` (each crate's
//! `tests/fuzz_seeds.rs` includes this file): every checked-in seed of a target
//! (`<crate>/fuzz/seeds/<target>/`), then [`MUTATIONS_PER_SEED`] mutations of each (bytes
//! flipped, inserted, removed, spliced with other seeds, grammar tokens inserted, from a fixed
//! random sequence, so a failure reproduces), through the function the target calls.

use std::path::Path;

pub const MUTATIONS_PER_SEED: usize = 2_000;

/// xorshift64*: a fixed sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], others: &[Vec<u8>], tokens: &[&[u8]], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            3 if !tokens.is_empty() => {
                let t = tokens[rng.below(tokens.len())];
                v.splice(at..at, t.iter().copied());
            }
            4 if !others.is_empty() => {
                let o = &others[rng.below(others.len())];
                let from = rng.below(o.len());
                v.truncate(at);
                v.extend_from_slice(&o[from..]);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn seeds(crate_dir: &str, target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(crate_dir).join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Runs `check` on the seeds of `target` under `crate_dir` and their mutations.
pub fn replay(crate_dir: &str, target: &str, tokens: &[&[u8]], check: fn(&[u8])) {
    let seeds = seeds(crate_dir, target);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    let mut runs = 0;
    for seed in &seeds {
        check(seed);
        for _ in 0..MUTATIONS_PER_SEED {
            let input = mutate(seed, &seeds, tokens, &mut rng);
            if let Err(e) = std::panic::catch_unwind(|| check(&input)) {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{target} fails on {:?} (seed {:?}): {why}",
                    String::from_utf8_lossy(&input),
                    String::from_utf8_lossy(seed)
                );
            }
            runs += 1;
        }
    }
    println!("{target}: {} seeds, {runs} mutations", seeds.len());
}
