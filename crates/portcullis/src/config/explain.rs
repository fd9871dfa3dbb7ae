//! Why a config file does not deserialize, said in the operator's words and
//! all at once. serde stops at the first problem; so each problem found is
//! explained (which key, what was meant, the nearest valid key for an
//! unknown one, the line), the offending key is taken out of the document
//! (toml_edit), and the rest is deserialized again, up to [`MAX_PROBLEMS`].
//! A file that is not TOML at all gets the parser's own message.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml_edit::{ImDocument, Item, Table};

/// Problems explained before the rest is left to a second run.
const MAX_PROBLEMS: usize = 20;

/// One step of a key path: a table's key or an array's index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every problem that keeps `text` from deserializing as `T`, explained;
/// empty when it does.
pub(super) fn problems<T: DeserializeOwned>(text: &str) -> Vec<String> {
    let mut text = text.to_owned();
    let mut out = Vec::new();
    // Array elements taken out so far (array path, index in the file), so
    // that a later problem names the index the operator sees.
    let mut removed: Vec<(Vec<Seg>, usize)> = Vec::new();
    // Lines are counted in the file as written.
    let first = ImDocument::parse(text.clone()).ok();
    // Keys already reported (and taken out): their absence is no news.
    let mut reported: Vec<Vec<Seg>> = Vec::new();
    while out.len() < MAX_PROBLEMS {
        let e = match toml::from_str::<T>(&text) {
            Ok(_) => break,
            Err(e) => e,
        };
        let Ok(doc) = ImDocument::parse(text.clone()) else {
            // Not TOML: the parser's message, with its line and a pointer.
            out.push(e.to_string().trim_end().to_owned());
            break;
        };
        let span = e.span().unwrap_or(0..0);
        // A flattened section's message starts with the key it is about
        // (its span is the section's).
        let (inner, message) = match e.message().split_once(": ") {
            Some((k, rest)) if is_key(k) => (Some(k), rest),
            _ => (None, e.message()),
        };
        let found = find(doc.as_table(), &span).unwrap_or_default();
        let path = refine(doc.as_table(), found, message, inner);
        let shown = original(&path, &removed);
        let at = first
            .as_ref()
            .and_then(|d| span_of(d.as_table(), &shown).map(|r| (d.raw(), r)))
            .unwrap_or((doc.raw(), span.clone()));
        let line = at.0[..at.1.start.min(at.0.len())].matches('\n').count() + 1;
        let whose = user_name(doc.as_table(), &path)
            .map(|n| format!("user {n:?}, "))
            .unwrap_or_default();
        let gone = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
            .is_some_and(|f| {
                let mut key = shown.clone();
                key.push(Seg::Key(f.to_owned()));
                reported.contains(&key)
            });
        if !gone {
            out.push(format!(
                "{}: {} ({whose}line {line})",
                display(&shown),
                say(message, &shown)
            ));
        }
        reported.push(shown);
        let mut editable = doc.into_mut();
        if path.is_empty() || !remove(editable.as_table_mut(), &path, &mut removed) {
            break;
        }
        text = editable.to_string();
    }
    out
}

/// Where serde's span is too wide to say (an entry of an array of tables,
/// a flattened section), the message says: the entry without the missing
/// key, or the unknown key inside the entry.
fn refine(root: &Table, mut path: Vec<Seg>, message: &str, inner: Option<&str>) -> Vec<Seg> {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_owned)
    };
    let missing = quoted("missing field `");
    let unknown = quoted("unknown field `").or(inner.map(str::to_owned));
    let (Some(Seg::Key(k)), Some(Seg::Index(from)), 2) = (path.first(), path.get(1), path.len())
    else {
        // A section: the key inside it that the message names.
        if let Some(f) = unknown {
            if table_at(root, &path).is_some_and(|t| t.contains_key(&f)) {
                path.push(Seg::Key(f));
            }
        }
        return path;
    };
    let Some(a) = root.get(k).and_then(Item::as_array_of_tables) else {
        return path;
    };
    // The first entry from there that the message fits.
    let fits = |t: &Table| match (&missing, &unknown) {
        (Some(f), _) => !t.contains_key(f),
        (None, Some(f)) => t.contains_key(f),
        (None, None) => true,
    };
    if let Some(j) = (*from..a.len()).find(|&j| a.get(j).is_some_and(fits)) {
        path = vec![Seg::Key(k.clone()), Seg::Index(j)];
        if let Some(f) = unknown {
            path.push(Seg::Key(f));
        }
    }
    path
}

/// A bare TOML key (letters, digits, `_`, `-`).
fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The table at `path` (a section, an entry, an inline table's copy is
/// not needed: only sections and entries are asked).
fn table_at<'a>(table: &'a Table, path: &[Seg]) -> Option<&'a Table> {
    match path {
        [] => Some(table),
        [Seg::Key(k), Seg::Index(i), rest @ ..] => {
            table_at(table.get(k)?.as_array_of_tables()?.get(*i)?, rest)
        }
        [Seg::Key(k), rest @ ..] => table_at(table.get(k)?.as_table()?, rest),
        _ => None,
    }
}

/// The span of the key (or entry) at `path`, in the file as written.
fn span_of(table: &Table, path: &[Seg]) -> Option<Range<usize>> {
    match path {
        [Seg::Key(k)] => table.key(k)?.span().or_else(|| table.get(k)?.span()),
        [Seg::Key(k), Seg::Index(i)] => {
            let t = table.get(k)?.as_array_of_tables()?.get(*i)?;
            t.span()
                .or_else(|| t.iter().next().and_then(|(k2, _)| t.key(k2)?.span()))
        }
        [Seg::Key(k), Seg::Index(i), rest @ ..] => {
            span_of(table.get(k)?.as_array_of_tables()?.get(*i)?, rest)
        }
        [Seg::Key(k), rest @ ..] => match table.get(k)? {
            Item::Table(t) => span_of(t, rest),
            Item::Value(toml_edit::Value::InlineTable(t)) => span_of(&t.clone().into_table(), rest),
            _ => None,
        },
        _ => None,
    }
}

/// The deepest key or element whose key or value span holds `span`'s start.
fn find(table: &Table, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (key, item) in table.iter() {
        let k = table.key(key).and_then(|k| k.span());
        let within = |r: Option<Range<usize>>| r.is_some_and(|r| r.contains(&span.start));
        if let Some(mut deeper) = find_item(item, span) {
            deeper.insert(0, Seg::Key(key.to_owned()));
            return Some(deeper);
        }
        if within(k) || within(item.span()) || item.span() == Some(span.clone()) {
            return Some(vec![Seg::Key(key.to_owned())]);
        }
    }
    None
}

fn find_item(item: &Item, span: &Range<usize>) -> Option<Vec<Seg>> {
    match item {
        Item::Table(t) => find(t, span).or_else(|| {
            t.span()
                .filter(|r| r.contains(&span.start))
                .map(|_| Vec::new())
        }),
        Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, t)| {
            let mut p = find(t, span).or_else(|| {
                t.span()
                    .filter(|r| r.contains(&span.start))
                    .map(|_| Vec::new())
            })?;
            p.insert(0, Seg::Index(i));
            Some(p)
        }),
        Item::Value(toml_edit::Value::InlineTable(t)) => find(&t.clone().into_table(), span),
        _ => None,
    }
}

/// Take the item at `path` out; an array element's removal is recorded
/// (with its index in the file) for [`original`].
fn remove(table: &mut Table, path: &[Seg], removed: &mut Vec<(Vec<Seg>, usize)>) -> bool {
    if let Some(Seg::Index(_)) = path.last() {
        let shown = original(path, removed);
        if let Some(Seg::Index(i)) = shown.last() {
            let array = shown[..shown.len() - 1].to_vec();
            if remove_in(table, path) {
                removed.push((array, *i));
                return true;
            }
        }
        return false;
    }
    remove_in(table, path)
}

fn remove_in(table: &mut Table, path: &[Seg]) -> bool {
    match path {
        [Seg::Key(k)] => table.remove(k).is_some(),
        [Seg::Key(k), rest @ ..] => match (table.get_mut(k), rest) {
            (Some(Item::Table(t)), _) => remove_in(t, rest),
            (Some(Item::ArrayOfTables(a)), [Seg::Index(n)]) if *n < a.len() => {
                a.remove(*n);
                true
            }
            (Some(Item::ArrayOfTables(a)), [Seg::Index(n), more @ ..]) => {
                a.get_mut(*n).is_some_and(|t| remove_in(t, more))
            }
            (Some(Item::Value(toml_edit::Value::InlineTable(t))), [Seg::Key(k2)]) => {
                t.remove(k2).is_some()
            }
            _ => false,
        },
        _ => false,
    }
}

/// `path` with every index as the file has it (elements taken out before
/// shifted the later ones down).
fn original(path: &[Seg], removed: &[(Vec<Seg>, usize)]) -> Vec<Seg> {
    let mut out = Vec::new();
    for seg in path {
        match seg {
            Seg::Index(i) => {
                let mut idx = *i;
                let mut gone: Vec<usize> = removed
                    .iter()
                    .filter(|(p, _)| *p == out)
                    .map(|(_, r)| *r)
                    .collect();
                gone.sort_unstable();
                for r in gone {
                    if r <= idx {
                        idx += 1;
                    }
                }
                out.push(Seg::Index(idx));
            }
            k => out.push(k.clone()),
        }
    }
    out
}

/// `users[0].root`.
fn display(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        s.push_str("the file");
    }
    s
}

/// The `name` of the `[[users]]` entry a path is in, if it has one.
fn user_name(root: &Table, path: &[Seg]) -> Option<String> {
    let (Some(Seg::Key(k)), Some(Seg::Index(i))) = (path.first(), path.get(1)) else {
        return None;
    };
    let entry = root.get(k)?.as_array_of_tables()?.get(*i)?;
    entry.get("name")?.as_str().map(str::to_owned)
}

/// serde's message, said as what to write instead.
fn say(message: &str, path: &[Seg]) -> String {
    let key = match path.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "",
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match nearest(unknown, &valid) {
            Some(n) => format!("unknown key; did you mean `{n}`?"),
            None if valid.is_empty() => "unknown key; this section takes none".to_owned(),
            None => format!("unknown key; valid keys include: {}", valid.join(", ")),
        };
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("missing key `{field}`, which is required");
    }
    if message == "invalid type: map, expected a sequence" {
        return format!(
            "written as a table [{key}]; each entry is an array of tables, \
             written with double brackets: [[{key}]]"
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: string ") {
        let (value, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
        if expected == "a sequence" {
            return format!("a list is needed, in brackets: {key} = [{value}]");
        }
        let number = ["usize", "u8", "u16", "u32", "u64", "i64", "f64", "integer"]
            .iter()
            .any(|t| expected.contains(t));
        if number {
            let bare = value.trim_matches('"');
            return match bare.parse::<f64>() {
                Ok(_) => format!("a number is needed, without quotes: {key} = {bare}"),
                Err(_) => format!("a number is needed, not the string {value}"),
            };
        }
        if expected == "a boolean" {
            return format!(
                "true or false is needed, without quotes: {key} = {}",
                value.trim_matches('"')
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            if expected.contains("string") || expected.starts_with("a duration") {
                return format!("{got} given, but a quoted string is needed, e.g. {key} = \"...\"");
            }
            return format!("{got} given, but {expected} is needed");
        }
    }
    message.to_owned()
}

/// The valid key closest to `word` (by edit distance), if any is close
/// enough to be what was meant.
fn nearest<'a>(word: &str, valid: &[&'a str]) -> Option<&'a str> {
    let best = valid
        .iter()
        .map(|v| (distance(word, v), *v))
        .min_by_key(|(d, _)| *d)?;
    (best.0 <= (word.len().max(3) / 3).max(2)).then_some(best.1)
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
