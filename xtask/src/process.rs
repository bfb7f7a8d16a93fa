use std::process::{Command, Stdio};

/// Runs a command with inherited output; an error names the command.
pub fn run(cmd: &mut Command) -> crate::Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(cmd)))
    }
}

/// Runs a command quietly and returns its stdout, or `None` if it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// `program`, runnable (`program --version` succeeds), installing Debian's `package` first
/// when it is not; `why` says what needs it, for the error when even that fails.
pub fn ensure_program(program: &str, package: &str, why: &str) -> crate::Result<String> {
    let runs = || output(Command::new(program).arg("--version")).is_some();
    if !runs() {
        let _lock = crate::lock::FileLock::acquire("apt")?;
        if !runs() {
            apt_install(&[package])?;
        }
    }
    if runs() {
        Ok(program.to_string())
    } else {
        Err(format!(
            "no `{program}` after installing Debian's {package}: {why}"
        ))
    }
}

/// Installs Debian packages (as root, or through passwordless sudo).
pub fn apt_install(packages: &[&str]) -> crate::Result<()> {
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    eprintln!("xtask: installing Debian packages: {}", packages.join(" "));
    run(&mut apt(&["update", "-qq"]))
        .and_then(|()| {
            let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
            args.extend_from_slice(packages);
            run(&mut apt(&args))
        })
        .map_err(|e| {
            format!(
                "{e}; install them by hand: apt-get install -y {}",
                packages.join(" ")
            )
        })
}
