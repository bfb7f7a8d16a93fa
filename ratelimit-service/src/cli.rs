//! The command line: `hardening-ratelimit --listen ADDR --redis URL --limits FILE`.

use std::path::PathBuf;

pub const USAGE: &str = "usage: hardening-ratelimit [--listen ADDR:PORT] --redis URL --limits FILE\n\
     \x20 --listen  the gRPC address (default 127.0.0.1:8081, Limitador's RLS port; port 0 picks one)\n\
     \x20 --redis   Redis, e.g. redis://127.0.0.1:6379 or redis+unix:///run/redis.sock\n\
     \x20 --limits  the limits, in Limitador's YAML format";

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub listen: String,
    pub redis: String,
    pub limits: PathBuf,
}

impl Args {
    /// Parses the arguments after the program name; an error says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut listen = String::from("127.0.0.1:8081");
        let mut redis = None;
        let mut limits = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--listen", Some(value)) => listen = value,
                ("--redis", Some(value)) => redis = Some(value),
                ("--limits", Some(value)) => limits = Some(PathBuf::from(value)),
                ("--listen" | "--redis" | "--limits", None) => {
                    return Err(format!("{arg} needs a value"));
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(Self {
            listen,
            redis: redis.ok_or("--redis is required")?,
            limits: limits.ok_or("--limits is required")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn all_arguments() {
        let args = parse(&[
            "--redis",
            "redis://h:1",
            "--limits",
            "l.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(args.redis, "redis://h:1");
        assert_eq!(args.limits, PathBuf::from("l.yaml"));
        assert_eq!(
            parse(&["--redis", "r", "--limits", "l"]).unwrap().listen,
            "127.0.0.1:8081"
        );
    }

    #[test]
    fn mistakes() {
        assert_eq!(
            parse(&["--limits", "l"]).unwrap_err(),
            "--redis is required"
        );
        assert_eq!(
            parse(&["--redis", "r"]).unwrap_err(),
            "--limits is required"
        );
        assert_eq!(parse(&["--redis"]).unwrap_err(), "--redis needs a value");
        assert!(parse(&["--help"]).unwrap_err().contains("unknown argument"));
    }
}
