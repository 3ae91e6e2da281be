//! What a package ships that comes from the command-line definition itself: shell
//! completions (`rosterd completions SHELL`) and man pages (`rosterd man [COMMAND]`),
//! generated from the same clap definitions that parse the command line, so they
//! cannot drift from it. Both need no config and touch no state.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rosterd", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum ManError {
    #[error("rosterd has no command {name:?}; its commands: {known}")]
    UnknownCommand { name: String, known: String },
    #[error("cannot render the man page: {0}")]
    Render(#[source] std::io::Error),
}

/// The man page (roff) of rosterd, or of one of its commands (`rosterd-sync(1)`).
pub fn man_page(command: Option<&str>) -> Result<String, ManError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Built, the subcommands get their display names (`rosterd-sync`).
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            cmd.find_subcommand(name)
                .cloned()
                .ok_or_else(|| ManError::UnknownCommand {
                    name: name.to_string(),
                    known: cmd
                        .get_subcommands()
                        .map(|s| s.get_name().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(ManError::Render)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_completions_naming_the_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let script = completions(shell);
            for command in [
                "sync",
                "check",
                "status",
                "daemon",
                "forget-provider",
                "man",
            ] {
                assert!(script.contains(command), "{shell}: {command} missing");
            }
        }
    }

    #[test]
    fn man_pages_name_the_commands_and_an_unknown_one_is_refused() {
        let page = man_page(None).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert!(page.contains(".TH rosterd 1"), "{page}");
        for command in [
            "sync",
            "check",
            "status",
            "daemon",
            "forget\\-provider",
            "completions",
        ] {
            assert!(page.contains(command), "{command} missing from:\n{page}");
        }
        let sync = man_page(Some("sync")).unwrap();
        assert!(sync.contains(".TH rosterd-sync 1"), "{sync}");
        assert!(sync.contains("\\-\\-dry\\-run"), "{sync}");
        let e = man_page(Some("snyc")).unwrap_err().to_string();
        assert!(e.contains("\"snyc\"") && e.contains("sync, check"), "{e}");
    }
}
