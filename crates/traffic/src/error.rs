//! Validation errors that name the field, so a scenario loader can point at
//! the exact key in the file.

use std::fmt;

/// One problem with one field of a configuration value.
///
/// `path` mirrors the file's structure, such as
/// `traffic[0].model.shape.stages[2].target`, so the author can find the key.
/// Validation collects every problem rather than stopping at the first, so
/// one edit-run cycle fixes them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path to the field, with `[i]` for list indices.
    pub path: String,
    /// What is wrong with it, as a sentence fragment.
    pub message: String,
}

impl FieldError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error seen from one level up: `prefix.path`.
    pub fn under(mut self, prefix: &str) -> FieldError {
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else if self.path.starts_with('[') {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Collects errors; `finish` turns "none" into `Ok`.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    /// Adds the errors of a nested value under `prefix`.
    pub(crate) fn nested(&mut self, prefix: &str, result: Result<(), Vec<FieldError>>) {
        if let Err(errors) = result {
            self.0.extend(errors.into_iter().map(|e| e.under(prefix)));
        }
    }

    pub(crate) fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
