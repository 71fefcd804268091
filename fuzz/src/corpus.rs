//! Reading and replaying a committed corpus on stable Rust: the part the
//! corpus-replay tests of `crates/transport` and `crates/game-logic` share.
//!
//! Included with `#[path]` by both `tests/fuzz_corpus.rs`, like the checks
//! themselves, so it only uses `std`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The corpus directory of fuzz target `target`, from a crate directory
/// two levels below the workspace root (`CARGO_MANIFEST_DIR`).
pub fn dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir)
        .join("../../fuzz/corpus")
        .join(target)
}

/// Every file of the corpus in `dir`, by name.
pub fn read(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(e) => panic!("a directory entry of {}: {e}", dir.display()),
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("corpus file {}: {e}", path.display()));
            (name, data)
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input; what the passing ones returned, and a line
/// (name, bytes, panic message) for every input that failed a check.
pub fn replay<T>(
    inputs: &[(String, Vec<u8>)],
    check: impl Fn(&[u8]) -> T,
) -> (Vec<T>, Vec<String>) {
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for (name, data) in inputs {
        match catch_unwind(AssertUnwindSafe(|| check(data))) {
            Ok(result) => passed.push(result),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{name} ({data:02x?}): {why}"));
            }
        }
    }
    (passed, failures)
}

/// With `GRIDCAP_WRITE_SEEDS` set, writes `seeds` into `dir` as `seed-<name>`.
pub fn write_seeds_if_asked(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    if std::env::var_os("GRIDCAP_WRITE_SEEDS").is_none() {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("create {}: {e}", dir.display());
    }
    for (name, data) in seeds {
        let path = dir.join(format!("seed-{name}"));
        if let Err(e) = std::fs::write(&path, data) {
            panic!("write {}: {e}", path.display());
        }
    }
}
