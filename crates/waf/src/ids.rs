//! Fixed ids of the engine's own checks. Each is critical at paranoia 1,
//! except residual encoding (error): a deep encoding alone is suspicious
//! but not proof, so it blocks only together with another finding.

use crate::policy::Severity;

/// URL longer than `limits.url_len_max`.
pub const URL_TOO_LONG: u32 = 1001;
/// More headers than `limits.header_count_max`.
pub const TOO_MANY_HEADERS: u32 = 1002;
/// Headers larger than `limits.header_bytes_max`.
pub const HEADERS_TOO_LARGE: u32 = 1003;
/// Body larger than `limits.body_bytes_max`.
pub const BODY_TOO_LARGE: u32 = 1004;
/// JSON deeper than `limits.json_depth_max`.
pub const JSON_TOO_DEEP: u32 = 1005;
/// More JSON keys than `limits.json_keys_max`.
pub const JSON_TOO_MANY_KEYS: u32 = 1006;
/// A JSON array longer than `limits.json_array_len_max`.
pub const JSON_ARRAY_TOO_LONG: u32 = 1007;
/// More parameters than `limits.params_max`.
pub const TOO_MANY_PARAMS: u32 = 1008;
/// A body that does not parse as its declared content type.
pub const MALFORMED_BODY: u32 = 1010;
/// Method not in the route's allow-list.
pub const METHOD_NOT_ALLOWED: u32 = 2001;
/// Content type not in the route's allow-list.
pub const CONTENT_TYPE_NOT_ALLOWED: u32 = 2002;
/// An encoding layer left after `decode.passes_max` passes.
pub const RESIDUAL_ENCODING: u32 = 3001;
/// A forbidden field (mass assignment, OWASP API3).
pub const MASS_ASSIGNMENT: u32 = 4601;

const ENGINE: [u32; 13] = [
    URL_TOO_LONG,
    TOO_MANY_HEADERS,
    HEADERS_TOO_LARGE,
    BODY_TOO_LARGE,
    JSON_TOO_DEEP,
    JSON_TOO_MANY_KEYS,
    JSON_ARRAY_TOO_LONG,
    TOO_MANY_PARAMS,
    MALFORMED_BODY,
    METHOD_NOT_ALLOWED,
    CONTENT_TYPE_NOT_ALLOWED,
    RESIDUAL_ENCODING,
    MASS_ASSIGNMENT,
];

/// Whether `id` is reserved for an engine check.
pub fn is_engine(id: u32) -> bool {
    ENGINE.contains(&id)
}

pub(crate) fn engine_index(id: u32) -> usize {
    ENGINE.iter().position(|&e| e == id).unwrap_or(0)
}

pub(crate) fn engine_severity(id: u32) -> Severity {
    if id == RESIDUAL_ENCODING {
        Severity::Error
    } else {
        Severity::Critical
    }
}
