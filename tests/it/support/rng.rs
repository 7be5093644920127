//! A small seeded random generator for tests that pick random moments: the seed is printed,
//! and `GOROSCOPE_SAFETY_SEED=<seed>` replays a run.

use std::time::Duration;

/// splitmix64: small, seedable, good enough to pick moments.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `GOROSCOPE_SAFETY_SEED`, else from the clock; the seed is printed.
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("GOROSCOPE_SAFETY_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("{test}: seed {seed} (GOROSCOPE_SAFETY_SEED={seed} replays it)");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, d)` at microsecond resolution.
    pub fn duration_below(&mut self, d: Duration) -> Duration {
        Duration::from_micros(self.next() % (d.as_micros() as u64).max(1))
    }
}
