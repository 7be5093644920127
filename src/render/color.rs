//! Colours for the delve-shaped views (`grs`, `bt`, `attach`): the program's own frames stand out
//! against runtime and standard-library frames. On only when stdout is a terminal and
//! `NO_COLOR` is unset (or `--color always`); `dump` and every machine-read format never colour.

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum When {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl When {
    /// Whether output to stdout is coloured.
    pub(crate) fn enabled(self) -> bool {
        match self {
            When::Always => true,
            When::Never => false,
            // SAFETY: isatty only inspects the descriptor.
            When::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && unsafe { libc::isatty(1) == 1 }
            }
        }
    }
}

/// Paints text, or leaves it alone when colours are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Palette {
    /// Colours on.
    pub on: bool,
}

const BOLD_GREEN: &str = "\x1b[1;32m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

impl Palette {
    /// A palette for stdout as `when` says.
    pub fn new(when: When) -> Palette {
        Palette { on: when.enabled() }
    }

    /// `s` made safe ([`super::safe::text`]: it names things from outside goroscope), painted.
    fn paint(self, code: &str, s: &str) -> String {
        let s = super::safe::text(s);
        if self.on {
            format!("{code}{s}{RESET}")
        } else {
            s.into_owned()
        }
    }

    /// `s` in the style of the frame of `function`: highlighted for the program's own code,
    /// dimmed for the runtime and the standard library.
    pub fn function(self, function: &str, s: &str) -> String {
        if is_user_function(function) {
            self.paint(BOLD_GREEN, s)
        } else {
            self.paint(DIM, s)
        }
    }

    /// A marker or heading (`*` of the selected goroutine, `=>` of the current line).
    pub fn mark(self, s: &str) -> String {
        self.paint(BOLD, s)
    }

    /// A goroutine's state (`[chan receive, 3 minutes]`).
    pub fn state(self, s: &str) -> String {
        self.paint(YELLOW, s)
    }
}

/// Whether a function belongs to the program rather than to Go's standard library: its
/// package is `main`, or its import path's first element has a dot (a module path), which no
/// standard-library package has.
pub(crate) fn is_user_function(function: &str) -> bool {
    let (dir, rest) = match function.rfind('/') {
        Some(i) => (&function[..i], &function[i + 1..]),
        None => ("", function),
    };
    let pkg_last = rest.split('.').next().unwrap_or("");
    if dir.is_empty() {
        return pkg_last == "main";
    }
    dir.split('/')
        .next()
        .is_some_and(|first| first.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_functions_are_main_and_module_paths() {
        assert!(is_user_function("main.main"));
        assert!(is_user_function("main.(*server).handle.func1"));
        assert!(is_user_function("github.com/acme/svc/db.(*Pool).Get"));
        assert!(!is_user_function("runtime.gopark"));
        assert!(!is_user_function("net/http.(*conn).serve"));
        assert!(!is_user_function("sync.(*Mutex).Lock"));
        assert!(!is_user_function("internal/poll.(*FD).Read"));
    }

    #[test]
    fn off_leaves_text_alone() {
        let p = Palette { on: false };
        assert_eq!(p.function("main.f", "main.f"), "main.f");
        let p = Palette { on: true };
        assert_eq!(p.function("main.f", "x"), "\x1b[1;32mx\x1b[0m");
        assert_eq!(p.function("runtime.f", "x"), "\x1b[2mx\x1b[0m");
    }
}
