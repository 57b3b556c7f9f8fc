//! Looking into a running store's data (the `vibedev ui` data pages): what each kind's browse
//! module fails with, and the bounds every page keeps (items per page, text shown per value).

/// Items on one page of a listing.
pub const PAGE_SIZE: usize = 50;

/// Characters of one value shown in a listing before it is cut.
pub const VALUE_CHARS: usize = 200;

/// Why a look into a store failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    #[error("{service}: {message}")]
    Api { service: String, message: String },
    #[error("{what} does not exist")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Exists { what: String },
    #[error("{message}")]
    Invalid { message: String },
}

impl BrowseError {
    pub fn hint(&self) -> Option<String> {
        match self {
            BrowseError::Api { service, .. } => Some(format!(
                "check that {service} is running (`vibedev status`) and see `vibedev logs {service}`"
            )),
            BrowseError::NotFound { .. } => {
                Some("it may have been deleted meanwhile: go back to the list".into())
            }
            BrowseError::Exists { .. } => Some("pick another id, or edit the existing one".into()),
            BrowseError::Invalid { .. } => Some("fix the value and send it again".into()),
        }
    }

    pub(crate) fn api(service: &str, message: impl Into<String>) -> BrowseError {
        BrowseError::Api {
            service: service.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> BrowseError {
        BrowseError::Invalid {
            message: message.into(),
        }
    }
}

/// A value cut to `max` characters: the text and whether it was cut.
pub fn clip(s: &str, max: usize) -> (String, bool) {
    match s.char_indices().nth(max) {
        Some((at, _)) => (s[..at].to_string(), true),
        None => (s.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_characters_not_bytes() {
        assert_eq!(clip("héllo", 2), ("hé".to_string(), true));
        assert_eq!(clip("hé", 2), ("hé".to_string(), false));
        assert_eq!(clip("", 2), (String::new(), false));
    }
}
