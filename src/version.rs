//! Go versions: parsed once from buildinfo and compared with named constants.

use std::fmt;

/// A Go release, `go1.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (21 for go1.21.13).
    pub minor: u32,
    /// Patch level (13 for go1.21.13; 0 for go1.21 or a release candidate).
    pub patch: u32,
}

impl GoVersion {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        GoVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `go1.21.13`, `go1.26.10-X:goroutineleakprofile`, `go1.22rc1`, `devel go1.27-abc`.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let s = s.trim();
        let s = s.strip_prefix("devel ").unwrap_or(s);
        let s = s.strip_prefix("go")?;
        let mut nums = [0u32; 3];
        let mut idx = 0;
        let mut cur: Option<u32> = None;
        for c in s.chars() {
            if let Some(d) = c.to_digit(10) {
                cur = Some(cur.unwrap_or(0).checked_mul(10)?.checked_add(d)?);
            } else if c == '.' && idx < 2 {
                nums[idx] = cur?;
                idx += 1;
                cur = None;
            } else {
                break;
            }
        }
        if let Some(c) = cur {
            nums[idx] = c;
        } else if idx == 0 {
            return None;
        }
        if idx == 0 && cur.is_none() {
            return None;
        }
        Some(GoVersion::new(nums[0], nums[1], nums[2]))
    }

    /// At least `1.minor`.
    pub(crate) fn at_least(self, minor: u32) -> bool {
        (self.major, self.minor) >= (1, minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Oldest Go minor version goroscope reads.
pub(crate) const MIN_SUPPORTED_MINOR: u32 = 19;
/// Newest Go minor version goroscope reads.
pub(crate) const MAX_SUPPORTED_MINOR: u32 = 27;
/// Whether goroscope has tables and rules for this version.
pub(crate) fn is_supported(v: GoVersion) -> bool {
    v.major == 1 && (MIN_SUPPORTED_MINOR..=MAX_SUPPORTED_MINOR).contains(&v.minor)
}

/// The supported versions in words: "go1.19 to go1.27".
pub(crate) fn supported_versions_text() -> String {
    format!("go1.{MIN_SUPPORTED_MINOR} to go1.{MAX_SUPPORTED_MINOR}")
}

/// Parses the `--force-go-version` argument: `1.21`, `go1.21` or `1.21.13`.
pub(crate) fn parse_force(s: &str) -> Option<GoVersion> {
    let s = s.trim();
    let v = if s.starts_with("go") {
        GoVersion::parse(s)
    } else {
        GoVersion::parse(&format!("go{s}"))
    }?;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_experiment_strings() {
        assert_eq!(
            GoVersion::parse("go1.21.13"),
            Some(GoVersion::new(1, 21, 13))
        );
        assert_eq!(
            GoVersion::parse("go1.26.10-X:goroutineleakprofile"),
            Some(GoVersion::new(1, 26, 10))
        );
        assert_eq!(
            GoVersion::parse("go1.22rc1"),
            Some(GoVersion::new(1, 22, 0))
        );
        assert_eq!(GoVersion::parse("go1.27"), Some(GoVersion::new(1, 27, 0)));
        assert_eq!(
            GoVersion::parse("devel go1.27-abcdef"),
            Some(GoVersion::new(1, 27, 0))
        );
        assert_eq!(GoVersion::parse("gox"), None);
        assert_eq!(GoVersion::parse(""), None);
    }

    #[test]
    fn supported_set() {
        assert!(is_supported(GoVersion::new(1, 19, 8)));
        assert!(is_supported(GoVersion::new(1, 20, 14)));
        assert!(is_supported(GoVersion::new(1, 21, 0)));
        assert!(is_supported(GoVersion::new(1, 27, 3)));
        assert!(!is_supported(GoVersion::new(1, 18, 10)));
        assert!(!is_supported(GoVersion::new(1, 28, 0)));
        assert!(!is_supported(GoVersion::new(2, 21, 0)));
        assert_eq!(supported_versions_text(), "go1.19 to go1.27");
        assert_eq!(parse_force("1.21"), Some(GoVersion::new(1, 21, 0)));
        assert_eq!(parse_force("go1.19.8"), Some(GoVersion::new(1, 19, 8)));
        assert_eq!(parse_force("x"), None);
    }
}
