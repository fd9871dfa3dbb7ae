//! The Grafana dashboard (`packaging/grafana-dashboard.json`, shipped in
//! the package's docs): importable as it is (its data source is a
//! variable, every panel uses it), each query valid PromQL (promtool
//! checks them as recording rules), and every series and label a query
//! names is one the server exports, checked against a real scrape.

use crate::ops::promtool;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../packaging/grafana-dashboard.json"
);

/// Every PromQL expression in the dashboard: the panels' targets and the
/// variables' queries.
fn queries(dash: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("a target's expr").to_owned());
        }
    }
    exprs
}

/// The `portcullis_*` series an expression names, each with the label
/// names of its matchers (`{a="x", b=~"y"}`).
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for (i, _) in expr.match_indices("portcullis_") {
        let rest = &expr[i..];
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..end].to_owned();
        let mut labels = Vec::new();
        if let Some(m) = rest[end..].strip_prefix('{') {
            let m = &m[..m.find('}').expect("a closed matcher")];
            for part in m.split(',') {
                let key = part
                    .split(['=', '!'])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                assert!(!key.is_empty(), "matcher {part:?} in {expr}");
                labels.push(key);
            }
        }
        found.push((name, labels));
    }
    found
}

/// Does `page` export the series `name` (a histogram's `_bucket`, `_sum`
/// and `_count` belong to its base name), and a sample of it with `label`?
fn exported(page: &str, name: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|b| page.contains(&format!("# TYPE {b} histogram")));
    base.is_some() || page.contains(&format!("# TYPE {name} "))
}

fn has_label(page: &str, name: &str, label: &str) -> bool {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .any(|l| l.contains(&format!("{label}=\"")))
}

/// The checks, against a page scraped after sessions, logins, transfers
/// and errors (from `ops::metrics_count_the_transfers_made`).
pub fn check_against(page: &str) {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dash["title"].is_string() && dash["uid"].is_string());
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    // Importable as is: no `__inputs` to fill in, the data source is the
    // `datasource` variable, and every panel and target uses it.
    assert!(dash.get("__inputs").is_none());
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(vars.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        ids.push(panel["id"].as_u64().expect("a panel id"));
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{panel}");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], ds, "{}", panel["title"]);
        for t in panel["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"], ds, "{}", panel["title"]);
        }
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids are unique");

    let exprs = queries(&dash);
    // The variables' queries name series too (Grafana's label_values).
    let variables: Vec<String> = vars
        .iter()
        .filter_map(|v| v["definition"].as_str())
        .map(str::to_owned)
        .collect();
    assert!(!variables.is_empty());
    for v in &variables {
        for (name, _) in selectors(v) {
            assert!(exported(page, &name), "variable query {v}: no {name}");
        }
    }
    // What the issue asks the dashboard to show.
    for needed in [
        "portcullis_sessions",
        "portcullis_logins_total",
        "portcullis_bans_total",
        "portcullis_transfers_total",
        "portcullis_sent_bytes_total",
        "portcullis_received_bytes_total",
        "portcullis_storage_errors_total",
        "portcullis_passive_ports_in_use",
    ] {
        assert!(
            exprs
                .iter()
                .flat_map(|e| selectors(e))
                .any(|(name, _)| name == needed),
            "the dashboard shows no {needed}"
        );
    }
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        for (name, labels) in selectors(e) {
            assert!(
                exported(page, &name),
                "the dashboard queries {name}, which the server does not export"
            );
            // Prometheus adds these when it scrapes.
            for label in labels
                .iter()
                .filter(|l| !["instance", "job"].contains(&l.as_str()))
            {
                assert!(
                    has_label(page, &name, label),
                    "the dashboard matches {name} on label {label}, which it does not have"
                );
            }
        }
        // Grafana's variables, as Grafana would fill them in.
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&e).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {quoted}\n"
        ));
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rules).unwrap();
    promtool(&["check", "rules", &file.path().display().to_string()], "");
}

#[test]
fn selectors_name_series_and_matcher_labels() {
    let s = selectors(
        "sum by (le) (rate(portcullis_a_bucket{instance=~\"$i\", outcome!=\"ok\"}[5m])) / portcullis_b",
    );
    assert_eq!(
        s,
        [
            (
                "portcullis_a_bucket".to_owned(),
                vec!["instance".to_owned(), "outcome".to_owned()]
            ),
            ("portcullis_b".to_owned(), vec![])
        ]
    );
    let page = "# TYPE portcullis_a histogram\nportcullis_a_bucket{le=\"1\"} 0\n";
    assert!(exported(page, "portcullis_a_bucket"));
    assert!(!exported(page, "portcullis_b"));
    assert!(has_label(page, "portcullis_a_bucket", "le"));
    assert!(!has_label(page, "portcullis_a_bucket", "outcome"));
}
