//! Request-body validation against a vendor's OpenAPI document, for the fakes (and the
//! OpenAPI 3.0 → JSON Schema conversion for `tests/request_bodies.rs`).

use axum::http::Method;
use serde_json::{json, Value};

/// OpenAPI 3.0's `nullable: true` as JSON Schema: the type also admits null.
pub fn nullable_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
            }
            map.values_mut().for_each(nullable_to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// `schema` (a request body schema of `doc`) as a JSON Schema of its own: the
/// document's components travel along so that `$ref`s resolve, and `nullable` is
/// converted.
pub fn body_schema(doc: &Value, schema: &Value) -> Value {
    let mut root = json!({
        "allOf": [schema.clone()],
        "components": doc["components"].clone(),
    });
    nullable_to_json_schema(&mut root);
    root
}

/// A validator for every operation's JSON request body, by (method, path template).
pub struct RequestValidators(Vec<(Method, String, jsonschema::Validator)>);

impl RequestValidators {
    /// From `doc`, checking formats (`uuid`, `email`, ...); panics naming `vendor` and
    /// the operation when a schema does not compile.
    pub fn from_openapi(vendor: &str, doc: &Value) -> RequestValidators {
        let mut out = Vec::new();
        let paths = doc["paths"].as_object().expect("OpenAPI paths");
        for (path, ops) in paths {
            for (method, op) in ops.as_object().expect("OpenAPI path item") {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&body_schema(doc, schema))
                    .unwrap_or_else(|e| panic!("{vendor} schema for {method} {path}: {e}"));
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .expect("OpenAPI method");
                out.push((method, path.clone(), validator));
            }
        }
        RequestValidators(out)
    }

    /// The body validator of `method template` (`/v1/org/{orgId}/user`).
    pub fn get(&self, method: &Method, template: &str) -> Option<&jsonschema::Validator> {
        self.0
            .iter()
            .find(|(m, p, _)| m == method && p == template)
            .map(|(_, _, v)| v)
    }
}

/// Every way `body` breaks `validator`, each as `<at>: <message>` where `<at>` is
/// `prefix` and the JSON pointer into the body (the message alone when both are empty).
pub fn errors(validator: &jsonschema::Validator, body: &Value, prefix: &str) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| {
            let at = format!("{prefix}{}", e.instance_path());
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect()
}

/// Checks each `(schema file under schemas/, document)`: rosterd's JSON output
/// against the schemas it publishes. Panics listing every mismatch.
pub fn assert_matches_schemas(documents: &[(&str, Value)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut validators = std::collections::BTreeMap::new();
    let mut bad = Vec::new();
    for (name, doc) in documents {
        let validator = validators.entry(*name).or_insert_with(|| {
            let text = std::fs::read_to_string(dir.join(name)).expect("schema file");
            let schema: Value = serde_json::from_str(&text).expect("schema JSON");
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schemas/{name}: {e}"))
        });
        bad.extend(errors(validator, doc, &format!("{name} ")));
    }
    assert!(
        bad.is_empty(),
        "output does not match its schema:\n{}",
        bad.join("\n")
    );
}
