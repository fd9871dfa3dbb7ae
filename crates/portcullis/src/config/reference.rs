//! The configuration reference (`docs/src/reference/config.md`) kept in
//! step with the serde structs: every key a struct takes has a row, and
//! every row names a key some struct takes. The structs' field names come
//! from serde itself: each struct rejects unknown fields, and the error for
//! one lists the fields it expected. A default the table writes as a value
//! (`"300s"`, `true`, `["read"]`) is checked too: the file with the key set
//! to it validates to the same options as the file without the key.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::auth::{AccountSection, AuthSection, HttpSection};
use super::events::HookSection;
use super::ldap::LdapKeys;
use super::pam::PamKeys;
use super::sections::{AcmeSection, ClientAuthSection};
use super::{
    ActiveSection, AnonymousSection, AzureSection, ControlSection, EventsSection, FileConfig,
    LimitsSection, LogSection, MetricsSection, NetworkAddress, PassiveSection,
    ProxyProtocolSection, S3Section, ServerSection, TlsSection, UserSection,
};

/// The keys of a `[[users]]` entry that its deserializer takes out before
/// the rest is read as an [`AccountSection`].
const USER_OWN_KEYS: &[&str] = &[
    "name",
    "password_hash",
    "storage_profile",
    "s3_profile",
    "password_with_cert",
    "disabled",
];

const REFERENCE: &str = include_str!("../../../../docs/src/reference/config.md");

/// The field names `T` takes, read from serde's unknown-field error.
fn fields<T: DeserializeOwned + std::fmt::Debug>(prefix: &str) -> BTreeSet<String> {
    let err = toml::from_str::<T>(&format!("{prefix}__not_a_key__ = 0\n"))
        .expect_err("an unknown key must be refused");
    let text = err.to_string();
    let rest = text
        .split("unknown field `__not_a_key__`")
        .nth(1)
        .unwrap_or_else(|| panic!("not an unknown-field error: {text}"));
    let line = rest.lines().next().unwrap_or("");
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Each table of the file (as the reference writes its keys' prefix) and
/// the keys it takes. A new section goes here with its struct.
fn sections() -> BTreeMap<&'static str, BTreeSet<String>> {
    let with = |mut a: BTreeSet<String>, own: &[&str]| {
        a.extend(own.iter().map(|k| (*k).to_owned()));
        a
    };
    // A [[users]] entry's own keys come before its account keys are read.
    let user = fields::<UserSection>("name = \"a\"\npassword_hash = \"b\"\n");
    BTreeMap::from([
        ("", fields::<FileConfig>("")),
        ("server", fields::<ServerSection>("")),
        ("passive", fields::<PassiveSection>("")),
        ("passive.address_by_network", fields::<NetworkAddress>("")),
        ("active", fields::<ActiveSection>("")),
        ("anonymous", fields::<AnonymousSection>("")),
        ("users", with(user, USER_OWN_KEYS)),
        ("auth", fields::<AuthSection>("")),
        ("auth.http", fields::<HttpSection>("")),
        (
            "auth.ldap",
            fields::<LdapKeys>("").union(&account()).cloned().collect(),
        ),
        (
            "auth.pam",
            fields::<PamKeys>("").union(&account()).cloned().collect(),
        ),
        ("limits", fields::<LimitsSection>("")),
        ("s3", fields::<S3Section>("")),
        ("azure", fields::<AzureSection>("")),
        ("log", fields::<LogSection>("")),
        ("metrics", fields::<MetricsSection>("")),
        ("control", fields::<ControlSection>("")),
        ("cluster", fields::<super::cluster::ClusterSection>("")),
        ("events", fields::<EventsSection>("")),
        ("events.hooks", fields::<HookSection>("")),
        ("proxy_protocol", fields::<ProxyProtocolSection>("")),
        ("tls", fields::<TlsSection>("")),
        ("tls.client_auth", fields::<ClientAuthSection>("")),
        ("tls.acme", fields::<AcmeSection>("domains = [\"a\"]\n")),
    ])
}

fn account() -> BTreeSet<String> {
    fields::<AccountSection>("")
}

/// The keys of the reference's table rows: `| \`section.key\` | ...`.
fn documented() -> BTreeSet<String> {
    REFERENCE
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_reference_names_every_key_and_only_keys() {
    let sections = sections();
    let documented = documented();
    assert!(
        documented.len() > 100,
        "the reference's table was not found"
    );
    let mut problems = Vec::new();
    // Code -> reference: each field is a row, or a table whose keys are rows.
    for (section, keys) in &sections {
        for key in keys {
            let full = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            let is_table = documented
                .iter()
                .any(|d| d.starts_with(&format!("{full}.")));
            if is_table && !sections.contains_key(full.as_str()) {
                problems.push(format!(
                    "{full}: the reference documents it as a table; add its struct to sections()"
                ));
            }
            if !documented.contains(&full) && !is_table {
                problems.push(format!(
                    "{full}: in the config structs, not in docs/src/reference/config.md"
                ));
            }
        }
    }
    // Reference -> code: each row's last part is a key of its section.
    for d in &documented {
        let (section, key) = d.rsplit_once('.').unwrap_or(("", d));
        match sections.get(section) {
            Some(keys) if keys.contains(key) => {}
            Some(_) => problems.push(format!(
                "{d}: in docs/src/reference/config.md, not a key of [{section}]"
            )),
            None => problems.push(format!(
                "{d}: in docs/src/reference/config.md, but [{section}] is not a section"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_missing_row_or_a_stray_row_is_found() {
    // The field list really comes from the structs.
    assert!(fields::<ServerSection>("").contains("umask"));
    assert!(fields::<TlsSection>("").contains("allow_ccc"));
    assert!(!fields::<TlsSection>("").contains("umask"));
    assert!(sections()["users"].contains("password_hash"));
    assert!(sections()["auth.ldap"].contains("root"));
}

/// Checks that approve everything: the defaults test is about values, not
/// about files that exist.
struct Approve;

impl super::Checks for Approve {
    fn ca_roots(&self, _: Option<&std::path::Path>) -> Result<(), String> {
        Ok(())
    }
    fn certificate(&self, _: &std::path::Path, _: &std::path::Path) -> Result<(), String> {
        Ok(())
    }
    fn md5_crypt(&self, _: &str) -> Result<bool, String> {
        Ok(false)
    }
    fn uid_min(&self) -> Option<u32> {
        Some(1000)
    }
}

/// The least file in which `section`'s keys can be written (its table
/// last, so that a key line appended to it lands there).
fn base(section: &str) -> Option<&'static str> {
    Some(match section {
        "server" => "[server]\n",
        "passive" => "[passive]\n",
        "active" => "[active]\n",
        "anonymous" => "[anonymous]\n",
        "users" => "[[users]]\nname = \"a\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\nroot = \"/\"\n",
        "auth" => "[auth]\n",
        "auth.http" => "[auth]\norder = [\"config\", \"http\"]\n[auth.http]\nurl = \"http://127.0.0.1:1/\"\n",
        "auth.ldap" => "[auth]\norder = [\"config\", \"ldap\"]\n[auth.ldap]\nurl = \"ldap://127.0.0.1\"\nsearch_base = \"dc=x\"\nroot = \"/srv/ftp/{user}\"\n",
        "auth.pam" if cfg!(feature = "pam") => "[auth]\norder = [\"config\", \"pam\"]\n[auth.pam]\n",
        "limits" => "[limits]\n",
        "s3" => "[s3]\n",
        "log" => "[log]\n",
        "events.hooks" => "[[events.hooks]]\nname = \"h\"\non = [\"upload\"]\naction = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
        "proxy_protocol" => "[proxy_protocol]\n",
        "tls" => "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n",
        "tls.client_auth" => "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n[tls.client_auth]\nca_file = \"/ca.pem\"\n",
        _ => return None,
    })
}

/// The reference's default for a key, when its cell starts with a TOML
/// value in backticks (`"300s"`, `true`, `["read"]`, `0` (unlimited)).
fn literal_default(cell: &str) -> Option<String> {
    let value = cell.strip_prefix('`')?.split('`').next()?;
    toml::from_str::<toml::Table>(&format!("v = {value}")).ok()?;
    Some(value.to_owned())
}

#[test]
fn the_reference_defaults_are_the_code_defaults() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in REFERENCE.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let key = cells[0].trim_matches('`');
        let (section, name) = key.rsplit_once('.').unwrap();
        let (Some(base), Some(default)) = (base(section), literal_default(cells[2])) else {
            continue;
        };
        let options = |text: &str| {
            super::parse(text, &Approve)
                .map(|(o, _)| format!("{o:?}"))
                .map_err(|e| format!("{text}: {e}"))
        };
        let without = options(base);
        let with = options(&format!("{base}{name} = {default}\n"));
        match (without, with) {
            (Ok(a), Ok(b)) if a == b => checked += 1,
            (Ok(_), Ok(_)) => problems.push(format!(
                "{key}: the reference's default {default} is not what the code does without the key"
            )),
            (a, b) => problems.push(format!("{key}: {:?}", a.and(b).unwrap_err())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 60, "only {checked} defaults were checked");
}
