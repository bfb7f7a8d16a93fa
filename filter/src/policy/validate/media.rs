//! Media types as `Content-Type` carries them: `type/subtype` plus parameters, compared by
//! their essence (lowercase type and subtype).

/// The essence of a `Content-Type` value (`application/json; charset=utf-8` is
/// `application/json`), or `None` if it is not a media type.
pub fn essence(value: &str) -> Option<String> {
    let main = value.split(';').next()?.trim();
    let (kind, subtype) = main.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(subtype)).then(|| main.to_ascii_lowercase())
}

/// A configured media type: an exact essence, or `type/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    kind: String,
    /// `None` for `type/*`.
    subtype: Option<String>,
}

impl MediaRange {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*/*" {
            return Ok(Self {
                kind: "*".into(),
                subtype: None,
            });
        }
        if text.contains(';') {
            return Err(format!("`{text}`: list the media type without parameters"));
        }
        if let Some(kind) = text.strip_suffix("/*") {
            return essence(&format!("{kind}/x"))
                .map(|_| Self {
                    kind: kind.to_ascii_lowercase(),
                    subtype: None,
                })
                .ok_or_else(|| format!("`{text}` is not a media type"));
        }
        let main =
            essence(text).ok_or_else(|| format!("`{text}` is not a media type (type/subtype)"))?;
        let (kind, subtype) = main.split_once('/').unwrap_or((main.as_str(), ""));
        Ok(Self {
            kind: kind.to_string(),
            subtype: Some(subtype.to_string()),
        })
    }

    pub fn matches(&self, essence: &str) -> bool {
        let Some((kind, subtype)) = essence.split_once('/') else {
            return false;
        };
        self.is_any() || (kind == self.kind && self.subtype.as_deref().is_none_or(|s| s == subtype))
    }

    /// `*/*`: any media type.
    pub fn is_any(&self) -> bool {
        self.kind == "*"
    }
}

/// Whether a media type is JSON: `application/json` or a `+json` structured suffix.
pub fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essences_ignore_parameters_and_case() {
        assert_eq!(
            essence("application/json; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            essence("Application/JSON").as_deref(),
            Some("application/json")
        );
        assert_eq!(essence(" text/plain ;q=1").as_deref(), Some("text/plain"));
        assert_eq!(essence("json"), None);
        assert_eq!(essence("application/"), None);
        assert_eq!(essence("a b/c"), None);
    }

    #[test]
    fn ranges() {
        let json = MediaRange::parse("application/json").expect("valid");
        assert!(json.matches("application/json"));
        assert!(!json.matches("application/jsonx"));
        let text = MediaRange::parse("text/*").expect("valid");
        assert!(text.matches("text/csv"));
        assert!(!text.matches("application/csv"));
        assert!(MediaRange::parse("application/json; charset=utf-8").is_err());
        assert!(MediaRange::parse("nonsense").is_err());
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/json"));
    }
}
