//! Where things are: the workspace, the binary under test, the per-test
//! artifact directory.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the system-test crate lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The `gridcap` binary under test: `GRIDCAP_BIN`, else the debug build.
///
/// Panics with the command that builds it when it is missing: `cargo test`
/// of this crate alone does not build another package's binary.
pub fn gridcap_bin() -> PathBuf {
    let bin = match std::env::var_os("GRIDCAP_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => target_dir().join("debug").join("gridcap"),
    };
    assert!(
        bin.is_file(),
        "the gridcap binary is missing at {}: build it with `cargo build -p gridcap-server` \
         (or point GRIDCAP_BIN at one)",
        bin.display()
    );
    bin
}

/// The `deploy/` directory of the workspace.
pub fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

/// A test's own directory, `target/system-tests/<test>/`, emptied when the
/// test starts and kept afterwards: every child's stdout and stderr, the
/// generated balancer configurations, the bots' reports.
#[derive(Debug, Clone)]
pub struct TestDir {
    /// The test's name, used in messages.
    pub name: String,
    /// The directory.
    pub path: PathBuf,
}

impl TestDir {
    /// Creates (or empties) the directory for the test `name`.
    pub fn new(name: &str) -> TestDir {
        let path = target_dir().join("system-tests").join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot empty {}: {e}", path.display()));
        }
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TestDir {
            name: name.to_owned(),
            path,
        }
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}
