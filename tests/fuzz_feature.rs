//! The suite fails when the fuzz targets did not run. `tests/fuzz.rs` is built only with the
//! `fuzz` feature (it drives `tally::fuzz`, which production builds leave out), and a plain
//! `cargo test` skips a test whose required features are off without a word: the fuzzing would
//! quietly stop being part of the suite. This file is always built; without the feature its one
//! test fails and says how to run the suite, as `scripts/test.sh` does.
//!
//! "Did not run" means "was not built": the check is the feature, at compile time, not a trace
//! left by tests/fuzz.rs at run time (test binaries are separate processes, in an order cargo
//! does not promise, and a trace would have to be cleaned between runs). Leaving tests out on
//! purpose stays the user's choice: a name filter (`cargo test parse`), `--test NAME` or `--lib`
//! leaves this test out too. With the feature on, the test here checks the other way the targets
//! could go unrun: a target of `tally::fuzz` that no driver calls.

#[cfg(not(feature = "fuzz"))]
#[test]
fn the_fuzz_targets_ran() {
    panic!(
        "the fuzz targets did not run: run the suite with `--features fuzz`, as scripts/test.sh \
         does (tests/fuzz.rs is built only with the `fuzz` feature)"
    );
}

/// Every target has a test in tests/fuzz.rs, a libFuzzer binary in `fuzz/`, and is in the
/// default list of `scripts/fuzz.sh`.
#[cfg(feature = "fuzz")]
#[test]
fn every_fuzz_target_is_driven() {
    let stable = include_str!("fuzz.rs");
    let libfuzzer = include_str!("../fuzz/Cargo.toml");
    let script = include_str!("../scripts/fuzz.sh");
    for (name, _) in tally::fuzz::TARGETS {
        assert!(
            stable.contains(&format!("fn {name}() {{\n    fuzz(\"{name}\");")),
            "tests/fuzz.rs has no test for {name}"
        );
        assert!(
            libfuzzer.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no binary for {name}"
        );
        assert!(
            script
                .lines()
                .any(|l| l.contains("targets=(") && l.split(['(', ')', ' ']).any(|w| w == name)),
            "scripts/fuzz.sh does not fuzz {name} by default"
        );
    }
}
