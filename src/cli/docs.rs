//! Shell completions and man pages, generated from the clap definitions of [`super::Cli`].

use clap::{Args, CommandFactory};
use std::io::{self, Write};
use std::path::PathBuf;

/// `completions` options.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man` options.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write goroscope.1 and one page a command (goroscope-dump.1, ...) into this directory
    /// instead of printing goroscope.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub fn completions(a: &CompletionsArgs, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "goroscope", out);
    Ok(())
}

/// Prints the man page, or writes every page into `--dir`.
pub fn man(a: &ManArgs, out: &mut dyn Write) -> io::Result<()> {
    let cmd = super::Cli::command();
    match &a.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io::Error::other(format!("{}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir)
                .map_err(|e| io::Error::other(format!("{}: {e}", dir.display())))
        }
        None => clap_mangen::Man::new(cmd).render(out),
    }
}
