//! Writes a self-signed end-entity certificate for `localhost` and
//! `127.0.0.1` (rcgen), for tests outside Rust: `make-cert DIR` writes
//! DIR/cert.pem and DIR/key.pem. The browser tests over https/wss use it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: make-cert DIR");
        return ExitCode::from(2);
    };
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("cert.pem"), c.cert.pem()).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem())
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-cert: {e}");
            ExitCode::FAILURE
        }
    }
}
