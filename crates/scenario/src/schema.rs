//! The JSON Schema of scenario files, for editors (VS Code with Even Better
//! TOML, or any JSON-Schema-aware TOML plugin): the world sections come
//! from the configuration types' `schemars` derives, and this layer adds
//! `[scenario]`, a `policy` that may be a file path, `[[assert]]`,
//! `[variants.NAME]` and `[explore]`.

use serde_json::{Value, json};

/// The schema as JSON (draft 2020-12).
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(rampart_world::WorldConfig);
    let mut v = schema.to_value();
    let Some(root) = v.as_object_mut() else {
        return v;
    };
    root.insert("title".into(), json!("Rampart scenario file"));
    root.insert(
        "description".into(),
        json!("A Rampart scenario: the world (fleet, scaling, token service, policy, traffic), assertions and variants."),
    );
    // `[scenario]` and `[run]` are one section; a file has either.
    if let Some(Value::Array(req)) = root.get_mut("required") {
        req.retain(|r| r != "run");
    }
    let not_both = json!({ "not": { "required": ["scenario", "run"] } });
    root.insert(
        "allOf".into(),
        json!([not_both, { "anyOf": [{ "required": ["scenario"] }, { "required": ["run"] }] }]),
    );
    let Some(Value::Object(props)) = root.get_mut("properties") else {
        return v;
    };
    if let Some(run) = props.get("run").cloned() {
        props.insert("scenario".into(), run);
    }
    if let Some(policy) = props.get("policy").cloned() {
        props.insert(
            "policy".into(),
            json!({
                "description": "The security policy bundle: a path to a policy file (relative to this file), or an inline table.",
                "anyOf": [
                    { "type": "string", "description": "Path to a policy TOML file." },
                    policy
                ]
            }),
        );
    }
    props.insert(
        "assert".into(),
        json!({
            "description": "SLO-style assertions, checked after the run.",
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["that"],
                "properties": {
                    "that": {
                        "type": "string",
                        "description": "<metric> <op> <value>, such as \"legit.latency.p99 <= 300ms\" or \"revoked.accepted_after(5s) == 0\". Ops: < <= > >= == !=. Values: 99.9%, 300ms, 40, 10k.",
                        "pattern": "^\\s*[A-Za-z0-9_.-]+(\\([^)]*\\))?\\s*(<=|>=|==|!=|<|>)\\s*\\S+\\s*$"
                    },
                    "during": { "type": "string", "description": "A phase name: evaluate over that window only." },
                    "name": { "type": "string", "description": "A display name." }
                }
            }
        }),
    );
    props.insert(
        "variants".into(),
        json!({
            "description": "Named overrides: keys are dotted paths (\"policy.ratelimit[0].limit.burst\") or nested tables.",
            "type": "object",
            "additionalProperties": { "type": "object" }
        }),
    );
    props.insert(
        "explore".into(),
        json!({
            "description": "Settings for `rampart explore` (property-testing the policy).",
            "type": "object"
        }),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_section_and_forbids_unknown_ones() {
        let s = json_schema();
        let props = s["properties"].as_object().unwrap();
        for k in [
            "scenario",
            "run",
            "fleet",
            "scaling",
            "token_service",
            "policy",
            "traffic",
            "assert",
            "variants",
            "explore",
        ] {
            assert!(props.contains_key(k), "{k}");
        }
        assert_eq!(s["additionalProperties"], json!(false));
        let text = s.to_string();
        assert!(text.contains("min_replicas") && text.contains("backend_cost"));
    }
}
