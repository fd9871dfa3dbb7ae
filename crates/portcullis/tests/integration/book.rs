//! The book's generated and included files: the examples it includes pass
//! `check-config`, and what is made from the code (the CLI's help page,
//! the man pages, the shell completions) is what the tree ships. A stale
//! file fails its test; `PORTCULLIS_REGEN_DOCS=1` writes it afresh instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::harness::BIN;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compare `path` (under the repository) with `made`, or write it when
/// PORTCULLIS_REGEN_DOCS=1.
fn shipped(path: &str, made: &str) {
    let file = repo().join(path);
    if std::env::var_os("PORTCULLIS_REGEN_DOCS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, made).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    if have != made {
        let line = have
            .lines()
            .zip(made.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(made.lines().count()));
        panic!(
            "{path} is stale (first difference at line {}); regenerate it with \
             PORTCULLIS_REGEN_DOCS=1 cargo test -p portcullis --features portcullis/pam \
             --test integration -- book::",
            line + 1
        );
    }
}

/// The CLI as operators see it: the hidden sub-commands (the PAM helper,
/// present or not with the pam feature) left out, so that every build
/// makes the same pages.
fn cli() -> clap::Command {
    let full = portcullis::cli::Cli::command();
    let mut cmd = clap::Command::new("portcullis")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true)
        .arg_required_else_help(true);
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd.build();
    cmd
}

#[test]
fn the_cli_help_page_is_current() {
    let mut cmd = cli();
    let mut page = String::from(
        "<!-- Made from the CLI by tests/integration/book.rs; \
         PORTCULLIS_REGEN_DOCS=1 regenerates it. -->\n\n## portcullis\n\n```text\n",
    );
    page += &cmd
        .render_long_help()
        .to_string()
        .replace(env!("CARGO_PKG_VERSION"), "VERSION");
    page += "```\n";
    for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
        page += &format!("\n## portcullis {}\n\n```text\n", sub.get_name());
        page += &sub.render_long_help().to_string();
        page += "```\n";
    }
    // clap indents its blank lines; the page has none with trailing spaces.
    let page: String = page
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    shipped("docs/src/reference/cli-help.md", &page);
}

/// Roff text: backslashes escaped, and a line starting with `.` or `'`
/// kept from being read as a request.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    match s.chars().next() {
        Some('.' | '\'') => format!("\\&{s}"),
        _ => s,
    }
}

/// portcullis(8): the template's hand-written sections, and at its
/// `.\" @CLI@` line the synopsis and each sub-command's options as clap
/// renders them.
#[test]
fn the_man_page_is_current() {
    let template = std::fs::read_to_string(repo().join("packaging/man/portcullis.8.in")).unwrap();
    let cmd = cli();
    let mut synopsis = String::from(".SH SYNOPSIS\n");
    let mut options = String::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let man = clap_mangen::Man::new(sub.clone());
        let mut buf = Vec::new();
        man.render_synopsis_section(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        // Each render starts with roff's quote-string set-up and its own
        // heading; the page keeps one of each.
        let text = text
            .split_once(".SH SYNOPSIS\n")
            .map_or(text.as_str(), |(_, t)| t);
        synopsis += text;
        synopsis += ".br\n";
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            let mut buf = Vec::new();
            man.render_options_section(&mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            options += &text.replacen(
                ".SH OPTIONS\n",
                &format!(".SS \"portcullis {}\"\n", sub.get_name()),
                1,
            );
        }
    }
    let generated =
        format!(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n{synopsis}.SH OPTIONS\n{options}");
    assert!(template.contains(".\\\" @CLI@\n"), "the template's marker");
    let page = template.replace(".\\\" @CLI@\n", &generated);
    // Every format the binary knows is named (the page once listed 4 of 6).
    for format in ["nftables\\-file", "firewalld", "windows"] {
        assert!(page.contains(format), "{format} missing from the man page");
    }
    let page: String = page
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    shipped("packaging/portcullis.8", &page);
}

/// portcullis.toml(5): every row of the configuration reference.
#[test]
fn the_config_man_page_is_current() {
    let template =
        std::fs::read_to_string(repo().join("packaging/man/portcullis.toml.5.in")).unwrap();
    let reference = std::fs::read_to_string(repo().join("docs/src/reference/config.md")).unwrap();
    let mut keys = String::new();
    let mut section = "";
    for row in reference.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let [key, kind, default, reload, meaning] = cells[..] else {
            panic!("a reference row without five cells: {row}");
        };
        let key = key.trim_matches('`');
        let this = key.split('.').next().unwrap();
        if this != section {
            section = this;
            keys += &format!(".SS \"[{section}]\"\n");
        }
        let plain = |s: &str| roff_text(&s.replace('`', ""));
        keys += &format!(
            ".TP\n.B {}\n{}\n.br\n{}; default: {}; reload: {}.\n",
            roff_text(key),
            plain(meaning),
            plain(kind),
            plain(default),
            plain(reload),
        );
    }
    assert!(template.contains(".\\\" @KEYS@\n"), "the template's marker");
    shipped(
        "packaging/portcullis.toml.5",
        &template.replace(".\\\" @KEYS@\n", &keys),
    );
}

#[test]
fn the_shell_completions_are_current() {
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "portcullis.bash"),
        (Shell::Zsh, "_portcullis"),
        (Shell::Fish, "portcullis.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cli(), "portcullis", &mut buf);
        shipped(
            &format!("packaging/completions/{file}"),
            &String::from_utf8(buf).unwrap(),
        );
    }
}

/// Each `examples/*.toml` passes `check-config`, with its absolute paths
/// moved into a temporary directory: `/srv/ftp` (the roots, made there),
/// `/etc/portcullis` (a certificate made by `gen-cert`, and an LDAP CA
/// file), and the package's user `portcullis` replaced by `nobody`, who
/// exists everywhere.
#[test]
fn every_example_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // nobody must reach the roots when check-config runs as root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let srv = base.join("srv");
    for d in ["pub", "alice", "bob"] {
        std::fs::create_dir_all(srv.join(d)).unwrap();
        std::fs::set_permissions(srv.join(d), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let etc = base.join("etc");
    let out = Command::new(BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(&etc)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(etc.join("key.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::copy(etc.join("cert.pem"), etc.join("ldap-ca.pem")).unwrap();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    let names: Vec<String> = examples
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "azure.toml",
            "ftps-acme.toml",
            "ftps-own-cert.toml",
            "ldap.toml",
            "s3.toml",
            "small-box.toml"
        ]
    );
    let book = std::fs::read_to_string(repo().join("docs/src/configuration/examples.md")).unwrap();
    for (path, name) in examples.iter().zip(&names) {
        assert!(
            book.contains(&format!("{{{{#include ../../../examples/{name}}}}}")),
            "the book does not include {name}"
        );
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("\"/srv/ftp", &format!("\"{}", srv.display()))
            .replace("\"/etc/portcullis", &format!("\"{}", etc.display()))
            .replace("user = \"portcullis\"", "user = \"nobody\"");
        let file = base.join(name);
        std::fs::write(&file, text).unwrap();
        let out = Command::new(BIN)
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "examples/{name}: {said}");
        assert!(said.contains(": OK"), "examples/{name}: {said}");
    }
}
