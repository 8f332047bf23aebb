//! The processes a stack runs: each with its log file, killed (SIGKILL) when dropped so nothing outlives the run.

use super::StackError;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Process {
    name: &'static str,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Starts `binary args...` with `env`, its stderr (where our binaries log) appended to `<dir>/<name>.log`.
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> Result<Process, StackError> {
        let log = dir.join(format!("{name}.log"));
        let file = File::options().create(true).append(true).open(&log).map_err(|e| StackError::io(&log, e))?;
        // A process group of its own: Ctrl-C at the terminal reaches the demo only, which stops the pipeline in
        // order (the operator must outlive the pipeline's deletion to run its finalizer).
        let child = Command::new(binary)
            .process_group(0)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| StackError::io(binary, e))?;
        Ok(Process { name, child, log })
    }

    /// The crash we promise to survive: no signal handler runs, nothing is flushed.
    pub fn kill_hard(mut self) -> Result<(), StackError> {
        self.child.kill().map_err(|e| StackError::io(Path::new(self.name), e))?;
        self.child.wait().map_err(|e| StackError::io(Path::new(self.name), e))?;
        Ok(())
    }

    /// Fails when the process has exited: a stack whose parts died says so instead of waiting for counts.
    pub fn check_running(&mut self) -> Result<(), StackError> {
        match self.child.try_wait().map_err(|e| StackError::io(Path::new(self.name), e))? {
            None => Ok(()),
            Some(status) => {
                Err(StackError::Exited { name: self.name, status: status.to_string(), log: self.log.clone() })
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Already exited is the only failure, and then there is nothing to stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
