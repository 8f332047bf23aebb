//! Which container runtime log format the agent reads.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatChoice {
    /// Detected per file from its first line.
    #[default]
    Auto,
    Cri,
    Docker,
    /// Each line is a message; no time or stream in it.
    Raw,
}
