//! The configuration reference (`docs/src/reference/config.md`) kept in
//! step with the serde structs: every key a struct takes has a row, and
//! every row names a key some struct takes. The structs' field names come
//! from serde itself: each struct rejects unknown fields, and the error for
//! one lists the fields it expected.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::auth::{AccountSection, AuthSection, HttpSection};
use super::ldap::LdapKeys;
use super::pam::PamKeys;
use super::{
    ActiveSection, AnonymousSection, FileConfig, LimitsSection, LogSection, MetricsSection,
    NetworkAddress, PassiveSection, ProxyProtocolSection, S3Section, ServerSection, TlsSection,
    UserSection,
};

/// The keys of a `[[users]]` entry that its deserializer takes out before
/// the rest is read as an [`AccountSection`].
const USER_OWN_KEYS: &[&str] = &["name", "password_hash", "s3_profile"];

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
        ("log", fields::<LogSection>("")),
        ("metrics", fields::<MetricsSection>("")),
        ("proxy_protocol", fields::<ProxyProtocolSection>("")),
        ("tls", fields::<TlsSection>("")),
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
