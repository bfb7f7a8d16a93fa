//! Header names as configs write them (and as requests list them in
//! `Access-Control-Request-Headers`).

/// Whether `name` is a header name: a non-empty HTTP token (RFC 9110 §5.1), in any case.
pub fn is_header_name(name: &str) -> bool {
    http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

/// A config's header name, or why it is not one.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if is_header_name(name) {
        Ok(())
    } else {
        Err(format!("`{name}` is not a header name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_any_case_are_header_names() {
        for name in ["x-api-key", "X-Api-Key", "a", "!#$%&'*+-.^_`|~09"] {
            assert!(is_header_name(name), "{name}");
        }
        for name in ["", "x api", ":path", "x:y", "é", "a\"b", "(x)", "x\n"] {
            assert!(!is_header_name(name), "{name:?}");
        }
        assert_eq!(
            check_header_name("x api"),
            Err("`x api` is not a header name".into())
        );
    }
}
