//! The error every command returns: one sentence saying what went wrong and, where there is
//! one, a hint saying what to do about it.
//!
//! It lives below the CLI and the modules that do the work, so neither imports from the
//! other: the modules build a [`Failure`] with the object they concern in its sentence, and
//! only `cli::run` turns it into output and an exit code.

/// A failure the CLI reports as one sentence and a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with no hint.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
        }
    }
    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The lab commands (`xpe gen`, `sink`, `xdp-fwd`, `host-vlan`) report the same sentence and
/// hint through their own type, as `xpe-lab` sits below the CLI.
impl From<xpe_lab::cmd::Failure> for Failure {
    fn from(f: xpe_lab::cmd::Failure) -> Self {
        Failure {
            message: f.message,
            hint: f.hint,
        }
    }
}
