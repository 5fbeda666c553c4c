//! Optional cargo subcommands the workflows use, and the CI policy for when they are missing.

use crate::step::Cmd;

/// A cargo subcommand installed separately from the toolchain.
pub struct Tool {
    /// As in `cargo <subcommand>`.
    pub subcommand: &'static str,
    pub install: &'static str,
}

pub const NEXTEST: Tool = Tool {
    subcommand: "nextest",
    install: "cargo install cargo-nextest --locked",
};

pub const CARGO_FUZZ: Tool = Tool {
    subcommand: "fuzz",
    install: "cargo install cargo-fuzz --locked",
};

impl Tool {
    pub fn is_installed(&self) -> bool {
        Cmd::cargo(&[self.subcommand, "--version"]).succeeds_quietly()
    }

    /// The error for a missing tool that the current workflow cannot do without.
    pub fn missing(&self, why: &str) -> String {
        format!(
            "`cargo {}` is not installed ({why}).\nInstall it with:\n    {}",
            self.subcommand, self.install
        )
    }
}

/// Whether we run under CI (`CI=true`, as CI services set it): a missing tool is then a failure,
/// never a fallback or a silent skip.
pub fn is_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// A warning meant to be seen in a scrolling terminal.
pub fn loud_warning(message: &str) {
    let rule = "!".repeat(78);
    eprintln!(
        "\n{rule}\n!! WARNING: {}\n{rule}",
        message.replace('\n', "\n!! ")
    );
}
