//! The fuzz targets of `tally::fuzz` on stable Rust, bounded in time: each test replays the
//! kept corpus (`fuzz/corpus/<target>/`, every file one input), then mutates it at random for
//! `TALLY_FUZZ_SECS` seconds (default 4). Every input must pass the target's checks and
//! allocate at most 1 MiB + 32 bytes per input byte at its peak (a counting allocator below).
//!
//! Built only with the `fuzz` feature, which `scripts/test.sh` turns on (tests/fuzz_feature.rs
//! fails the suite when it is off). `TALLY_FUZZ_SEED=N` repeats a run; a failing input is
//! written to `target/fuzz-failures/<target>/` and named in the panic. Run one target with its
//! count of executions shown: `cargo test --features fuzz --test fuzz -- --nocapture
//! pixel_query`. For coverage-guided fuzzing on nightly, see `scripts/fuzz.sh`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---- A counting allocator: live bytes and their peak, per thread -----------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak of `f` beyond what was live before it.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    (PEAK.with(Cell::get) - base).max(0) as usize
}

const ALLOC_SLACK: usize = 1 << 20;
const ALLOC_PER_BYTE: usize = 32;
/// Mutated inputs are cut to this length.
const MAX_INPUT: usize = 200_000;

// ---- Inputs -----------------------------------------------------------------------------------

/// xorshift64*: enough randomness for mutation, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens the parsers treat specially, spliced into inputs.
const DICTIONARY: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%25",
    b"%2e",
    b"%2E",
    b"%00",
    b"%FF",
    b"%C3%A9",
    b"%EF%BC%8E",
    b"%E2%80%A6",
    b"&",
    b"=",
    b"+",
    b".",
    b"$",
    b"(",
    b")",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xef\xbc\x8e",
    b"\\",
    b"\\x22",
    b"\\\"",
    b"\"",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b",",
    b"1e999",
    b"-0",
    b"null",
    b"__proto__",
    b"constructor",
    b"$where",
    b"site=acme&",
    b"&url=",
    b"&ref=",
    b"&title=",
    b"&p.",
    b"name",
    b"props",
    b"utm_source",
    b"https://",
    b"http://acme.example/",
    b"?q=",
    b"Chrome/",
    b"Firefox/",
    b"Mozilla/5.0 (",
    b"Android",
    b"iPhone",
    b"bot",
    b" HTTP/1.1\"",
    b"\"GET /",
    b" 200 ",
    b"[23/Nov/2026:14:05:07 +0100] ",
    "\u{1F389}".as_bytes(),
    b"\r\n",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, word.iter().copied());
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 if !input.is_empty() => {
                // Repeat a slice: long runs of one thing.
                let from = rng.below(input.len());
                let to = (from + 1 + rng.below(16)).min(input.len());
                let chunk = input[from..to].to_vec();
                for _ in 0..1 + rng.below(200) {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            6 => input.truncate(at),
            _ => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, word.iter().copied());
            }
        }
    }
    input.truncate(MAX_INPUT);
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn seconds() -> f64 {
    std::env::var("TALLY_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0)
}

fn seed() -> u64 {
    std::env::var("TALLY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1
}

/// Runs `target` on one input; on a failure, keeps the input and fails the test naming it.
fn run_one(name: &str, target: fn(&[u8]), input: &[u8], check_alloc: bool) {
    let mut peak = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| peak = peak_of(|| target(input))));
    let limit = ALLOC_SLACK + ALLOC_PER_BYTE * input.len();
    let failure = match outcome {
        Err(_) => Some("panicked".to_owned()),
        Ok(()) if check_alloc && peak > limit => Some(format!(
            "allocated {peak} bytes at its peak for {} input bytes (limit {limit})",
            input.len()
        )),
        Ok(()) => None,
    };
    if let Some(what) = failure {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/fuzz-failures")
            .join(name);
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{:016x}", fnv(input)));
        let _ = std::fs::write(&file, input);
        let shown = String::from_utf8_lossy(&input[..input.len().min(300)]);
        panic!(
            "fuzz target {name} {what} on input {} ({} bytes, kept in {}): {shown:?}",
            file.display(),
            input.len(),
            file.display()
        );
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Replays the corpus (twice: the first pass warms lazily built tables, the second checks
/// allocation too), then mutates it until the time is up. Prints the executions.
fn fuzz(name: &str) {
    let target = tally::fuzz::target(name).expect("a target of tally::fuzz");
    let corpus = load_corpus(name);
    assert!(!corpus.is_empty(), "the corpus of {name} is empty");
    for input in &corpus {
        run_one(name, target, input, false);
    }
    for input in &corpus {
        run_one(name, target, input, true);
    }
    let seed = seed();
    let mut rng = Rng(seed);
    let budget = Duration::from_secs_f64(seconds());
    let started = Instant::now();
    let mut runs = 0u64;
    let mut input = Vec::new();
    while started.elapsed() < budget {
        if runs.is_multiple_of(16) {
            input.clone_from(&corpus[rng.below(corpus.len())]);
        }
        mutate(&mut rng, &mut input, &corpus);
        run_one(name, target, &input, true);
        runs += 1;
    }
    println!(
        "fuzz {name}: {} corpus inputs replayed, {runs} mutated inputs in {:.1} s \
         (seed {seed}, TALLY_FUZZ_SEED={seed} repeats it)",
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn pixel_query() {
    fuzz("pixel_query");
}

#[test]
fn user_agent() {
    fuzz("user_agent");
}

#[test]
fn field_key() {
    fuzz("field_key");
}

#[test]
fn log_line() {
    fuzz("log_line");
}

#[test]
fn forwarded() {
    fuzz("forwarded");
}

#[test]
fn event_body() {
    fuzz("event_body");
}

/// The driver can fail: a target that panics, or allocates far more than its input, is caught.
#[test]
fn a_broken_promise_is_caught() {
    let panics = catch_unwind(|| run_one("self_test", |_| panic!("a broken promise"), b"x", true));
    assert!(panics.is_err());
    let hungry = catch_unwind(|| {
        run_one(
            "self_test",
            |d| drop(vec![0u8; (4 << 20) + d.len()]),
            b"x",
            true,
        )
    });
    assert!(hungry.is_err());
    run_one("self_test", |d| drop(d.to_vec()), b"x", true);
}
