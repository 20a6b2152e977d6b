//! A HyperLogLog sketch: `2^p` registers, each the highest rank a visitor's hash gave it.
//!
//! A visitor's 64-bit hash picks a register with its top `p` bits; its rank is one more than
//! the number of leading zeros of the remaining `64 - p` bits (at most `65 - p`). Adding a
//! visitor raises its register to its rank if that is higher, so adding is a `$max`, merging
//! two sketches is the register-wise maximum (PFMERGE), and the same visitors in any order and
//! any split give the same registers. The estimate is Ertl's "improved raw estimator" (Otmar
//! Ertl, *New cardinality estimation algorithms for HyperLogLog sketches*, 2017, algorithm 6):
//! one formula over the register histogram that behaves as linear counting while registers are
//! empty and as HyperLogLog once they fill, with no empirical bias table (HLL++'s) and no
//! switch-over point where the error jumps. Standard error `1.04 / sqrt(2^p)`: 1.6% at p = 12,
//! 6.5% at p = 8.
//!
//! Pure arithmetic on registers: this module knows neither documents nor visitors.

/// A sketch of precision `p` (4 ≤ p ≤ 16): `2^p` registers of one byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    p: u8,
    registers: Box<[u8]>,
}

impl Sketch {
    pub fn new(p: u8) -> Sketch {
        assert!((4..=16).contains(&p), "precision {p} out of 4..=16");
        Sketch {
            p,
            registers: vec![0; 1 << p].into_boxed_slice(),
        }
    }

    pub fn precision(&self) -> u8 {
        self.p
    }

    /// The registers, index by index.
    pub fn registers(&self) -> &[u8] {
        &self.registers
    }

    /// The register a hash falls in, and the rank it gives that register (1 ..= 65 - p).
    pub fn register_of(p: u8, hash: u64) -> (usize, u8) {
        let index = (hash >> (64 - p)) as usize;
        // The bits below the index, with a stop bit so an all-zero rest ranks 65 - p.
        let rest = (hash << p) | (1 << (p - 1));
        (index, rest.leading_zeros() as u8 + 1)
    }

    /// Adds a visitor's hash; returns the register and its new rank when it was raised.
    pub fn add(&mut self, hash: u64) -> Option<(usize, u8)> {
        let (index, rank) = Sketch::register_of(self.p, hash);
        self.raise(index, rank).then_some((index, rank))
    }

    /// Raises register `index` to `rank` if that is higher; says whether it was. An index out
    /// of range (a field another writer left) is ignored.
    pub fn raise(&mut self, index: usize, rank: u8) -> bool {
        match self.registers.get_mut(index) {
            Some(r) if *r < rank => {
                *r = rank;
                true
            }
            _ => false,
        }
    }

    /// Register-wise maximum with `other` (of the same precision; a sketch of another
    /// precision is ignored).
    pub fn merge(&mut self, other: &Sketch) {
        if other.p != self.p {
            return;
        }
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Whether no visitor was ever added.
    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|r| *r == 0)
    }

    /// The estimated number of distinct visitors (Ertl's improved raw estimator).
    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let q = 64 - usize::from(self.p);
        // histogram[k]: registers holding k, for k in 0 ..= q + 1.
        let mut histogram = vec![0u32; q + 2];
        for r in self.registers.iter() {
            histogram[usize::from(*r).min(q + 1)] += 1;
        }
        let mut z = m * tau(1.0 - f64::from(histogram[q + 1]) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        if z.is_infinite() {
            return 0.0;
        }
        m * m / (2.0 * std::f64::consts::LN_2) / z
    }
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1); infinite at 1 (every register empty).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))² 2^-k) / 3; 0 at 0 and 1.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A stand-in for visitors' hashes: SplitMix64, deterministic per seed.
    fn hashes(seed: u64, n: usize) -> impl Iterator<Item = u64> {
        let mut state = seed;
        (0..n).map(move |_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    }

    fn sketch_of(p: u8, seed: u64, n: usize) -> Sketch {
        let mut s = Sketch::new(p);
        for h in hashes(seed, n) {
            s.add(h);
        }
        s
    }

    #[test]
    fn ranks_and_indexes() {
        assert_eq!(Sketch::register_of(12, u64::MAX), (4095, 1));
        assert_eq!(Sketch::register_of(12, 0), (0, 53));
        assert_eq!(Sketch::register_of(12, 1 << 51), (0, 1));
        assert_eq!(Sketch::register_of(12, 1 << 50), (0, 2));
        assert_eq!(Sketch::register_of(8, 0), (0, 57));
        let mut s = Sketch::new(12);
        assert_eq!(s.add(1 << 50), Some((0, 2)));
        assert_eq!(s.add(1 << 51), None, "a lower rank raises nothing");
        assert_eq!(Sketch::new(12).estimate(), 0.0);
    }

    /// Small counts are exact while no two visitors share a register (linear counting counts
    /// occupied registers). Among n visitors some two share one of 4,096 registers with
    /// probability about n(n-1)/8192: 17% at 40. Then the estimate is one low, never more.
    #[test]
    fn exact_up_to_forty_while_registers_are_distinct() {
        let (mut exact, mut runs) = (0, 0);
        for seed in 0..200 {
            let mut s = Sketch::new(12);
            let mut occupied = 0;
            for (i, h) in hashes(seed, 40).enumerate() {
                let n = i + 1;
                let (index, _) = Sketch::register_of(12, h);
                if s.registers[index] == 0 {
                    occupied += 1;
                }
                s.add(h);
                let estimate = s.estimate().round() as usize;
                assert_eq!(estimate, occupied, "seed {seed}, n {n}");
            }
            runs += 1;
            exact += usize::from(occupied == 40);
        }
        // The share of runs exact at 40 matches the birthday bound (~83%).
        assert!(
            (150..=185).contains(&exact),
            "{exact} of {runs} exact at 40"
        );
    }

    /// Within 3 standard errors (3 × 1.6% = 4.9%) for every sketch, and no bias: the mean
    /// error over 20 seeds within 1.2% (3 × 1.6% / √20 = 1.1%), at 1k, 10k and 100k.
    #[test]
    fn within_the_standard_error_above() {
        for n in [1_000usize, 10_000, 100_000] {
            let mut sum = 0.0;
            for seed in 0..20 {
                let e = sketch_of(12, 1000 + seed, n).estimate() / n as f64 - 1.0;
                assert!(e.abs() < 0.049, "n {n}, seed {seed}: error {e:+.4}");
                sum += e;
            }
            assert!(
                (sum / 20.0).abs() < 0.012,
                "n {n}: mean error {:+.4}",
                sum / 20.0
            );
        }
    }

    /// Precision 8 (people per page): 6.5% standard error, 3 of them at most.
    #[test]
    fn precision_eight_within_its_error() {
        for n in [10usize, 500, 5_000] {
            for seed in 0..10 {
                let e = sketch_of(8, 77 + seed, n).estimate() / n as f64 - 1.0;
                assert!(e.abs() < 0.195, "n {n}, seed {seed}: error {e:+.4}");
            }
        }
    }

    proptest! {
        /// Merging the sketches of any split of a set of visitors gives the registers of one
        /// sketch of the whole.
        #[test]
        fn merging_any_split_is_the_sketch_of_the_whole(
            visitors in proptest::collection::vec(any::<u64>(), 0..2000),
            parts in proptest::collection::vec(0usize..5, 0..2000),
        ) {
            let mut whole = Sketch::new(12);
            let mut split: Vec<Sketch> = (0..5).map(|_| Sketch::new(12)).collect();
            for (i, h) in visitors.iter().enumerate() {
                whole.add(*h);
                split[parts.get(i).copied().unwrap_or(0)].add(*h);
            }
            let mut merged = Sketch::new(12);
            for part in split.iter().rev() {
                merged.merge(part);
            }
            prop_assert_eq!(merged, whole);
        }
    }
}
