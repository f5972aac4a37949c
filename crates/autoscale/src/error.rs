//! Configuration errors, reported all at once with the field path.

use std::fmt;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path to the field, such as `behavior.scale_up.policies[1].value`.
    pub path: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

/// Every problem found in a configuration. Validation never stops at the
/// first error, so a person fixing a file sees the whole list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// One or more fields are invalid.
    #[error("invalid autoscaling configuration: {}", DisplayList(.0))]
    Invalid(Vec<FieldError>),
    /// A manifest could not be parsed or mapped.
    #[error("cannot read manifest: {0}")]
    Manifest(String),
}

impl ConfigError {
    /// The field errors (empty for a manifest error).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid(v) => v,
            ConfigError::Manifest(_) => &[],
        }
    }
}

struct DisplayList<'a>(&'a [FieldError]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.path, e.message)?;
        }
        Ok(())
    }
}

/// Collects field errors while walking a configuration.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.push(path, message);
        }
    }

    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0))
        }
    }
}
