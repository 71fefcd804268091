//! The `--config` TOML file, layered under the flags and variables.

use serde_json::Value;

use super::{ConfigError, ServeOptions};

impl ServeOptions {
    /// Fills every unset option from the `--config` file, if one was given.
    pub fn merge_file(self) -> Result<ServeOptions, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        // Straight into `ServeOptions`, so an unknown key or a wrong type is
        // reported with its line (`deny_unknown_fields`).
        let file: ServeOptions = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let mut merged = layer(&self, &file).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot merge {} with the flags: {e}",
                path.display()
            ))
        })?;
        merged.config = Some(path);
        Ok(merged)
    }
}

/// Every option `over` sets, the others from `under`.
///
/// Field by field through serde, so no field can be forgotten. JSON values
/// rather than TOML's: a TOML integer stops at `i64::MAX`, a flag may be
/// any `u64`.
fn layer(over: &ServeOptions, under: &ServeOptions) -> Result<ServeOptions, serde_json::Error> {
    let mut merged = serde_json::to_value(under)?;
    if let (Value::Object(merged), Value::Object(over)) = (&mut merged, serde_json::to_value(over)?)
    {
        merged.extend(over.into_iter().filter(|(_, v)| !v.is_null()));
    }
    serde_json::from_value(merged)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::{Args, Command};

    use super::*;
    use crate::config::Mode;
    use crate::config::defaults::Defaults;

    /// A fresh directory for one test's files.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gridcap-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Resolves `file` as the only source besides defaults, as a string to
    /// compare (errors included).
    fn resolve_file(path: &PathBuf, file: &toml::Table) -> String {
        std::fs::write(path, toml::to_string(file).unwrap()).unwrap();
        let options = ServeOptions {
            config: Some(path.clone()),
            ..Default::default()
        };
        format!("{:?}", options.merge_file().and_then(ServeOptions::resolve))
    }

    /// Values other than the default to try for an option, by its value
    /// name; numbers are derived from the default.
    fn candidates(value_name: &str, default: Option<&str>) -> Vec<toml::Value> {
        let list = |items: &[&str]| {
            toml::Value::Array(items.iter().map(|s| toml::Value::from(*s)).collect())
        };
        let number = default.and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
        match value_name {
            "MS" | "N" | "BYTES" | "PER_SEC" | "FRAMES" => [number + 1, number - 1, number * 2]
                .into_iter()
                .filter(|n| *n >= 0)
                .map(toml::Value::from)
                .collect(),
            "MODE" => vec!["single".into(), "stateful".into(), "stateless".into()],
            "FORMAT" => vec!["text".into(), "json".into()],
            "ID" => vec!["b".into()],
            "ADDR" => vec!["127.0.0.1:9".into()],
            "DIR" | "FILE" => vec!["elsewhere".into()],
            "URL" => vec!["redis://127.0.0.1:6380".into()],
            "URLS" => vec![list(&["redis://127.0.0.1:7000"])],
            "PEERS" => vec![list(&["a=127.0.0.1:9001@9101", "b=127.0.0.1:9002@9102"])],
            "ORIGINS" => vec![list(&["https://play.example"])],
            "IPS" => vec![list(&["10.0.0.1"])],
            other => panic!("no sample values for {other}: add some"),
        }
    }

    /// Settings an option may need to take effect: its mode, or its pair.
    fn bases() -> Vec<toml::Table> {
        [
            "",
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001@9101']",
            "node_id = 'a'\npeers = ['a=127.0.0.1:9001@9101']",
            "mode = 'stateless'\nredis = 'redis://127.0.0.1:6379'",
            "mode = 'stateless'",
            "tls_cert = 'c.pem'",
            "tls_key = 'k.pem'",
        ]
        .iter()
        .map(|b| b.parse().unwrap())
        .collect()
    }

    /// Every key of the file changes the resolved configuration: for each
    /// `ServeOptions` argument, some value, in some context, resolves to a
    /// valid configuration other than the context's own.
    #[test]
    fn every_file_key_reaches_the_config() {
        let dir = temp_dir("every-key");
        let path = dir.join("gridcap.toml");
        let defaults = Defaults::default().shown();
        let command = ServeOptions::augment_args(Command::new("serve"));
        let mut checked = 0;
        for arg in command.get_arguments() {
            let key = arg.get_id().as_str();
            if key == "config" {
                continue;
            }
            let value_name = arg.get_value_names().unwrap()[0].as_str();
            let default = defaults.get(key).map(String::as_str);
            let reached = bases().into_iter().any(|base| {
                let before = resolve_file(&path, &base);
                candidates(value_name, default).into_iter().any(|value| {
                    let mut file = base.clone();
                    file.insert(key.to_owned(), value);
                    let after = resolve_file(&path, &file);
                    after.starts_with("Ok(") && after != before
                })
            });
            assert!(
                reached,
                "the file key {key} does not reach the configuration"
            );
            checked += 1;
        }
        assert!(checked > 30, "only {checked} options found");
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let path = temp_dir("config").join("gridcap.toml");
        std::fs::write(
            &path,
            "rate_limit = 5\nmax_connections = 7\nallowed_origins = [\"https://a.example/\"]\n\
             mode = \"stateless\"\nredis = \"redis://127.0.0.1:6379\"\n",
        )
        .unwrap();
        let cli = ServeOptions {
            config: Some(path.clone()),
            rate_limit: Some(9),
            node_id: Some("n1".into()),
            ..Default::default()
        };
        let merged = cli.merge_file().unwrap();
        assert_eq!(merged.config, Some(path), "--config survives the merge");
        assert_eq!(merged.mode, Some(Mode::Stateless));
        let c = merged.resolve().unwrap();
        assert_eq!(c.limits.rate_per_sec, 9, "the flag wins");
        assert_eq!(c.max_connections, 7, "the file fills the rest");
        assert_eq!(c.allowed_origins, vec!["https://a.example".to_owned()]);
        assert_eq!(c.topology.node_id(), "n1");
    }

    #[test]
    fn flags_beyond_toml_integers_survive_the_merge() {
        let path = temp_dir("config-big").join("gridcap.toml");
        std::fs::write(&path, "max_games = 5\n").unwrap();
        let cli = ServeOptions {
            config: Some(path),
            drain_timeout_ms: Some(u64::MAX),
            ..Default::default()
        };
        let merged = cli.merge_file().unwrap();
        assert_eq!(merged.drain_timeout_ms, Some(u64::MAX));
        assert_eq!(merged.max_games, Some(5));
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = temp_dir("config-bad");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "rate_limt = 5\n").unwrap();
        let cli = ServeOptions {
            config: Some(path),
            ..Default::default()
        };
        let err = cli.merge_file().unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("rate_limt"), "{err}");
        let cli = ServeOptions {
            config: Some(dir.join("missing.toml")),
            ..Default::default()
        };
        assert!(matches!(cli.merge_file(), Err(ConfigError::Read { .. })));
    }
}
