//! Fuzzing stand-in for the config loader (proptest, so it runs in CI with the other
//! tests): mutations of a valid config — bytes replaced, inserted or cut, lines
//! dropped, values swapped for other YAML — must never panic, and every refusal must
//! say where: a line (YAML errors) or a key path (schema errors), and never echo a
//! secret.

use proptest::prelude::*;

use super::{load, GOOD};
use crate::config::ConfigError;

/// One edit of the text.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, String),
    Cut(usize, usize),
    DropLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        Just("\t".to_string()),
        Just(": ".to_string()),
        Just("\n- ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("${".to_string()),
        Just("~".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("\u{feff}".to_string()),
        "[a-z_]{1,12}: [a-z0-9]{0,8}\n",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        (any::<usize>(), piece).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Cut(at, n)),
        any::<usize>().prop_map(Edit::DropLine),
    ]
}

/// The nearest char boundary at or below `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Replace(at, c) => {
            let at = boundary(text, *at);
            if let Some(old) = text[at..].chars().next() {
                text.replace_range(at..at + old.len_utf8(), &c.to_string());
            }
        }
        Edit::Insert(at, s) => {
            let at = boundary(text, *at);
            text.insert_str(at, s);
        }
        Edit::Cut(at, n) => {
            let start = boundary(text, *at);
            let end = boundary(text, (start + n).min(text.len()));
            if end > start {
                text.replace_range(start..end, "");
            }
        }
        Edit::DropLine(n) => {
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let drop = n % lines.len();
                let kept: Vec<&str> = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop)
                    .map(|(_, l)| *l)
                    .collect();
                *text = kept.join("\n");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_config_loads_or_is_refused_saying_where(edits in proptest::collection::vec(edit(), 1..6)) {
        let mut text = GOOD.to_string();
        for e in &edits {
            apply(&mut text, e);
        }
        let (_dir, result) = load(&text);
        if let Err(err) = result {
            let message = err.to_string();
            prop_assert!(!message.contains("secret-value"), "secret echoed: {message}");
            match &err {
                ConfigError::Yaml { message, .. } => {
                    prop_assert!(message.contains("line "), "YAML error without a line: {message}");
                }
                ConfigError::Invalid { issues, .. } => {
                    prop_assert!(!issues.is_empty());
                    for issue in issues {
                        prop_assert!(!issue.message.trim().is_empty(), "empty message at {}", issue.path);
                        prop_assert!(
                            !issue.path.is_empty() || issue.message.contains("line "),
                            "a problem that says neither its key path nor its line: {}", issue.message
                        );
                    }
                }
                ConfigError::Read { .. } => {}
            }
        }
    }
}
