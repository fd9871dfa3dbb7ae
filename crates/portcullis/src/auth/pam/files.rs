//! The system's files that decide who may log in besides PAM itself:
//! `/etc/ftpusers` (names refused), `/etc/shells` (the shells a real
//! account has), `/etc/login.defs` (`UID_MIN`, where non-system accounts
//! start). Parsed here without I/O; read by the back end at each login, so
//! that an edit counts at once.

/// Whether `user` is listed in an ftpusers(5) file: one name a line,
/// `#` comments and blank lines ignored, surrounding blanks trimmed.
pub fn ftpusers_lists(text: &str, user: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .any(|name| !name.is_empty() && name == user)
}

/// Whether `shell` is one of the shells of a shells(5) file: absolute
/// paths, one a line, `#` comments and blank lines ignored.
pub fn shells_list(text: &str, shell: &str) -> bool {
    !shell.is_empty()
        && text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .any(|s| s.starts_with('/') && s == shell)
}

/// `UID_MIN` from a login.defs(5) file: `UID_MIN <number>` on its own
/// line; the last such line counts; `None` if there is none or it is not a
/// number.
pub fn uid_min(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("UID_MIN"))
                .then(|| words.next().and_then(|n| n.parse().ok()))
                .flatten()
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftpusers_as_debian_ships_it() {
        // Debian's /etc/ftpusers (from the ftpd packages).
        let text = "# /etc/ftpusers: list of users disallowed FTP access. See ftpusers(5).\n\
                    \n\
                    root\n\
                    daemon\n\
                    \tbin  \n\
                    nobody # the unprivileged user\n";
        for refused in ["root", "daemon", "bin", "nobody"] {
            assert!(ftpusers_lists(text, refused), "{refused}");
        }
        for allowed in ["alice", "roo", "#", "", "nobody # the unprivileged user"] {
            assert!(!ftpusers_lists(text, allowed), "{allowed:?}");
        }
    }

    #[test]
    fn shells_and_uid_min() {
        let shells = "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/bash\n\n/bin/bash\n";
        assert!(shells_list(shells, "/bin/bash"));
        assert!(shells_list(shells, "/usr/bin/bash"));
        assert!(!shells_list(shells, "/usr/sbin/nologin"));
        assert!(!shells_list(shells, ""));
        assert!(!shells_list(shells, "# /etc/shells: valid login shells"));

        let defs = "#\n# Min/max values for automatic uid selection in useradd(8)\n#\n\
                    UID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n#SYS_UID_MIN\t\t  101\n";
        assert_eq!(uid_min(defs), Some(1000));
        assert_eq!(uid_min("UID_MIN 500\nUID_MIN  2000\n"), Some(2000));
        assert_eq!(uid_min("#UID_MIN 500\nUID_MINIMUM 3\n"), None);
        assert_eq!(uid_min("UID_MIN lots\n"), None);
    }

    /// This machine's own files parse (where they exist).
    #[test]
    fn the_systems_files_parse() {
        if let Ok(defs) = std::fs::read_to_string("/etc/login.defs") {
            if defs.lines().any(|l| l.trim_start().starts_with("UID_MIN")) {
                assert!(uid_min(&defs).is_some(), "{defs}");
            }
        }
        if let Ok(shells) = std::fs::read_to_string("/etc/shells") {
            assert!(shells_list(&shells, "/bin/sh"), "{shells}");
        }
    }
}
