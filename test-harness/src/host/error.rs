use std::fmt;

use super::shared::VmLabel;

/// Everything that can go wrong in the native host, as a value with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum HarnessError {
    /// The module could not be read or compiled.
    Load(String),
    /// The module could not be instantiated (e.g. it imports something Envoy does not provide).
    Instantiate(String),
    /// `on_vm_start` returned false.
    VmStartFailed { vm: VmLabel },
    /// `on_configure` returned false: Envoy would refuse the plugin. `log` is what the module
    /// logged while refusing.
    ConfigRejected { vm: VmLabel, log: Vec<String> },
    /// The module trapped (a Rust panic, an out-of-bounds access...): Envoy would fail the VM
    /// and answer 503 to this and every later request on that worker.
    Trap {
        vm: VmLabel,
        callback: &'static str,
        message: String,
    },
    /// The VM failed earlier and serves nothing.
    VmFailed { vm: VmLabel },
    /// The test asked for something the exchange's state does not allow (e.g. the upstream
    /// request of an exchange the filter answered locally).
    Usage(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(m) => write!(f, "cannot load the module: {m}"),
            Self::Instantiate(m) => write!(f, "cannot instantiate the module: {m}"),
            Self::VmStartFailed { vm } => write!(f, "{vm:?}: on_vm_start returned false"),
            Self::ConfigRejected { vm, log } => {
                write!(
                    f,
                    "{vm:?}: on_configure returned false; the module logged: {log:?}"
                )
            }
            Self::Trap {
                vm,
                callback,
                message,
            } => {
                write!(f, "{vm:?}: the module trapped in {callback}: {message}")
            }
            Self::VmFailed { vm } => write!(f, "{vm:?} failed earlier"),
            Self::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HarnessError {}

pub type Result<T> = std::result::Result<T, HarnessError>;
