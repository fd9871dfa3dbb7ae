//! A file that does not deserialize: each problem said as what was meant,
//! all of them at once (config/explain.rs).

use super::parse;

fn errors(text: &str) -> Vec<String> {
    parse(text).unwrap_err().0
}

#[test]
fn users_in_single_brackets_says_double() {
    let e = errors("[users]\nname = \"alice\"\npassword_hash = \"x\"\nroot = \"/srv\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        e[0],
        "users: written as a table [users]; each entry is an array of tables, \
         written with double brackets: [[users]] (line 1)"
    );
}

#[test]
fn a_string_where_a_list_or_a_number_is_meant() {
    let e = errors("[server]\nlisten = \"0.0.0.0:21\"\n[limits]\nmax_sessions = \"1000\"\n");
    assert_eq!(
        e,
        [
            "server.listen: a list is needed, in brackets: listen = [\"0.0.0.0:21\"] (line 2)",
            "limits.max_sessions: a number is needed, without quotes: max_sessions = 1000 (line 4)",
        ],
        "{e:?}"
    );
}

#[test]
fn a_missing_root_names_the_user_by_index_and_name() {
    let e = errors(
        "[[users]]\nname = \"alice\"\npassword_hash = \"x\"\nroot = \"/srv/a\"\n\
         [[users]]\nname = \"bob\"\npassword_hash = \"x\"\n\
         [[users]]\nname = \"carol\"\npassword_hash = \"x\"\nlisten = 1\n",
    );
    // After bob's entry is set aside, carol is still users[2].
    assert_eq!(
        e,
        [
            "users[1]: missing key `root`, which is required (user \"bob\", line 5)",
            "users[2].listen: unknown key; valid keys include: root, permissions, \
             tls_mode, data_protection, download_rate, upload_rate, allow_from, deny_from, \
             max_sessions, quota_bytes, quota_files, tls_client_cert, tls_client_cert_match, \
             tls_client_cert_fingerprints (user \"carol\", line 11)",
            "users[2]: missing key `root`, which is required (user \"carol\", line 8)",
        ],
        "{e:?}"
    );
}

#[test]
fn unknown_keys_suggest_the_nearest_and_all_are_reported() {
    let e = errors(
        "[server]\nlisen = [\"0.0.0.0:21\"]\nidle_timout = \"5m\"\n[pasive]\nports = \"1-2\"\n",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(
        e[0],
        "server.lisen: unknown key; did you mean `listen`? (line 2)"
    );
    assert_eq!(
        e[1],
        "server.idle_timout: unknown key; did you mean `idle_timeout`? (line 3)"
    );
    assert!(
        e[2].starts_with("pasive: unknown key; did you mean `passive`?"),
        "{e:?}"
    );
    // Nothing near: the valid keys are listed.
    let e = errors("[metrics]\nzzzzzzzz = 1\nlisten = \"127.0.0.1:0\"\n");
    assert_eq!(
        e,
        ["metrics.zzzzzzzz: unknown key; valid keys include: listen (line 2)"]
    );
}

#[test]
fn a_file_that_is_not_toml_gets_the_parsers_message() {
    let e = errors("[server\nlisten = 1\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("line 1"), "{e:?}");
}

#[test]
fn a_required_key_of_the_wrong_type_is_reported_once() {
    let e = errors("[metrics]\nlisten = 9121\n[server]\nlisen = []\n");
    assert_eq!(
        e,
        [
            "metrics.listen: integer `9121` given, but a quoted string is needed, \
             e.g. listen = \"...\" (line 2)",
            "server.lisen: unknown key; did you mean `listen`? (line 4)",
        ],
        "{e:?}"
    );
}
