//! Secrets in the config: `${ENV_VAR}` references and `*_file` paths, never literals.
//!
//! Secret values are held as [`SecretString`], whose `Debug` prints a placeholder and
//! which has no `Display`, so a secret cannot reach a log line or an error by accident.

use std::path::Path;

use secrecy::SecretString;
use serde_json::Value;

use super::Issue;

/// Key names whose value is a secret: they must be a `${ENV_VAR}` reference (or be
/// given through the `<name>_file` key instead).
pub const SECRET_KEYS: &[&str] = &[
    "api_key",
    "token",
    "password",
    "bearer_token",
    "client_secret",
];

/// Refuses literal secrets: walks the raw tree before environment expansion.
pub fn check_no_literal_secrets(value: &Value, path: &str, issues: &mut Vec<Issue>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = join(path, k);
                if SECRET_KEYS.contains(&k.as_str()) {
                    let ok = matches!(v, Value::String(s) if is_single_env_ref(s));
                    if !ok {
                        issues.push(Issue::new(
                            p,
                            format!(
                                "a literal secret is refused; write `{k}: ${{ENV_VAR}}` or `{k}_file: path/to/file`"
                            ),
                        ));
                    }
                } else {
                    check_no_literal_secrets(v, &p, issues);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_no_literal_secrets(v, &format!("{path}[{i}]"), issues);
            }
        }
        _ => {}
    }
}

pub(super) fn is_single_env_ref(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("${")
        && s.ends_with('}')
        && s.len() > 3
        && s[2..s.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces every `${NAME}` in every string of the tree with the environment's value.
/// `$${` stands for a literal `${`. A missing variable is an issue at its key path.
/// Every `(name, value)` put in is noted in `expanded`, so that messages can be
/// scrubbed of them (see [`scrub`]): `${VAR}` works in any string, and a secret
/// written into the wrong key must not come back in an error about that key.
pub fn expand_env(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<Issue>,
    expanded: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_env(v, &join(path, k), env, issues, expanded);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand_env(v, &format!("{path}[{i}]"), env, issues, expanded);
            }
        }
        Value::String(s) if s.contains('$') => match expand_str(s, env, expanded) {
            Ok(expanded) => *s = expanded,
            Err(msg) => issues.push(Issue::new(path.to_string(), msg)),
        },
        _ => {}
    }
}

/// Values this short are left in messages: no real secret is, and scrubbing them would
/// garble ordinary words.
const SCRUB_MIN_CHARS: usize = 4;

/// `message` with every expanded environment value of [`SCRUB_MIN_CHARS`] or more
/// characters put back as its `${NAME}`.
pub fn scrub(message: &str, expanded: &[(String, String)]) -> String {
    let mut out = message.to_string();
    for (name, value) in expanded {
        if value.chars().count() >= SCRUB_MIN_CHARS && out.contains(value.as_str()) {
            out = out.replace(value.as_str(), &format!("${{{name}}}"));
        }
    }
    out
}

fn expand_str(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    expanded: &mut Vec<(String, String)>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated `${` (write `$${` for a literal)".to_string())?;
            let name = &tail[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable reference"
                ));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            expanded.push((name.to_string(), value));
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Takes the secret `key` (already env-expanded) or `<key>_file` out of `map`.
/// Exactly one must be present when `required`; a file's trailing newline is dropped.
pub fn take_secret(
    map: &mut serde_json::Map<String, Value>,
    key: &str,
    base_dir: &Path,
    path: &str,
    required: bool,
    issues: &mut Vec<Issue>,
) -> Option<SecretString> {
    let file_key = format!("{key}_file");
    let inline = map.remove(key);
    let file = map.remove(&file_key);
    match (inline, file) {
        (Some(_), Some(_)) => {
            issues.push(Issue::new(
                join(path, key),
                format!("give either {key} or {file_key}, not both"),
            ));
            None
        }
        (Some(Value::String(s)), None) => secret_value(s, &join(path, key), issues),
        (Some(_), None) => {
            issues.push(Issue::new(join(path, key), "expected a string".into()));
            None
        }
        (None, Some(Value::String(f))) => {
            secret_file(&base_dir.join(&f), &join(path, &file_key), issues)
        }
        (None, Some(_)) => {
            issues.push(Issue::new(
                join(path, &file_key),
                "expected a file path".into(),
            ));
            None
        }
        (None, None) => {
            if required {
                issues.push(Issue::new(
                    join(path, key),
                    format!("missing: give {key}: ${{ENV_VAR}} or {file_key}: path"),
                ));
            }
            None
        }
    }
}

/// A secret given in the config (already `${ENV}`-expanded), checked and taken in;
/// a problem is an issue at `key_path`.
pub fn secret_value(
    value: String,
    key_path: &str,
    issues: &mut Vec<Issue>,
) -> Option<SecretString> {
    match check_value(&value, None) {
        Ok(()) => Some(accept(value)),
        Err(problem) => {
            issues.push(Issue::new(key_path.to_string(), problem));
            None
        }
    }
}

/// A secret read from the file at `file` (one trailing newline dropped), checked and
/// taken in; a problem is an issue at `key_path` naming the file.
pub fn secret_file(file: &Path, key_path: &str, issues: &mut Vec<Issue>) -> Option<SecretString> {
    let read = crate::files::read_regular(file, MAX_SECRET_FILE_BYTES)
        .map_err(|e| format!("cannot read secret file {}: {e}", file.display()))
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| format!("secret file {} is not UTF-8 text", file.display()))
        });
    let checked = read.and_then(|s| {
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        check_value(&s, Some(file)).map(|()| s)
    });
    match checked {
        Ok(s) => Some(accept(s)),
        Err(problem) => {
            issues.push(Issue::new(key_path.to_string(), problem));
            None
        }
    }
}

/// Largest secret file read: a key or token is a few hundred bytes at most, and a
/// file of megabytes named as one is a mistake, not a credential.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Why a secret's value cannot be used (it is sent in an HTTP header): says where and
/// what, never the value. `file` is where it was read from, if from a file.
fn check_value(secret: &str, file: Option<&Path>) -> Result<(), String> {
    let whence = file.map_or_else(String::new, |p| format!(" (file {})", p.display()));
    if secret.is_empty() {
        return Err(match file {
            Some(p) => format!("secret file {} is empty", p.display()),
            None => "the secret is empty".into(),
        });
    }
    if let Some((at, c)) = secret.char_indices().find(|(_, c)| c.is_control()) {
        let line = secret[..at].matches('\n').count() + 1;
        let what = match c {
            '\n' | '\r' => format!("a newline after line {line}"),
            c => format!(
                "the control character U+{:04X} on line {line}",
                u32::from(c)
            ),
        };
        return Err(format!(
            "the secret{whence} contains {what}, which an HTTP header cannot carry \
             (a secret file may end with one newline, nothing else)"
        ));
    }
    if secret.chars().count() < crate::redact::MIN_SECRET_CHARS {
        return Err(format!(
            "the secret{whence} is shorter than {} characters: no real credential is",
            crate::redact::MIN_SECRET_CHARS
        ));
    }
    Ok(())
}

/// Takes a checked secret in: from here on the scrubber removes it from every output.
fn accept(secret: String) -> SecretString {
    crate::redact::register(&secret);
    SecretString::from(secret)
}

/// Joins a key path and a key: `providers[1]` + `tenant_id` → `providers[1].tenant_id`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("s3cr3t".into()),
            "HOST" => Some("api.example.com".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_references_and_escapes() {
        assert_eq!(
            expand_str("https://${HOST}/v1", &env, &mut Vec::new())
                .ok()
                .as_deref(),
            Some("https://api.example.com/v1")
        );
        assert_eq!(
            expand_str("cost $5 $${X}", &env, &mut Vec::new())
                .ok()
                .as_deref(),
            Some("cost $5 ${X}")
        );
    }

    #[test]
    fn missing_variable_is_reported_at_its_path() {
        let mut v = json!({"providers": [{"api_key": "${NOPE}"}]});
        let mut issues = Vec::new();
        expand_env(&mut v, "", &env, &mut issues, &mut Vec::new());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "providers[0].api_key");
        assert!(issues[0].message.contains("NOPE is not set"));
    }

    #[test]
    fn literal_secret_is_refused_but_reference_is_not() {
        let v = json!({"providers": [{"api_key": "abc123"}, {"token": "${T}"}, {"api_key": 5}]});
        let mut issues = Vec::new();
        check_no_literal_secrets(&v, "", &mut issues);
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["providers[0].api_key", "providers[2].api_key"]);
        assert!(
            !issues[0].message.contains("abc123"),
            "the error must not echo the secret"
        );
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "from-file\n").unwrap();
        let mut map = json!({"api_key_file": "k"}).as_object().cloned().unwrap();
        let mut issues = Vec::new();
        let s = take_secret(
            &mut map,
            "api_key",
            dir.path(),
            "providers[0]",
            true,
            &mut issues,
        );
        assert!(issues.is_empty());
        assert_eq!(
            s.map(|s| s.expose_secret().to_string()).as_deref(),
            Some("from-file")
        );
    }

    #[test]
    fn missing_secret_file_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = json!({"api_key_file": "nope"})
            .as_object()
            .cloned()
            .unwrap();
        let mut issues = Vec::new();
        let s = take_secret(
            &mut map,
            "api_key",
            dir.path(),
            "providers[3]",
            true,
            &mut issues,
        );
        assert!(s.is_none());
        assert_eq!(issues[0].path, "providers[3].api_key_file");
    }

    #[test]
    fn secret_debug_does_not_print_it() {
        let s = SecretString::from("hunter2".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
