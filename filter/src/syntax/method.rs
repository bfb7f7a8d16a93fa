//! HTTP methods as configs write them.

use http::Method;

use super::ConfigError;

/// A method as it appears on the wire: an HTTP token. Methods are case-sensitive, so a
/// lowercase `get` would never match a browser's `GET`; it is refused rather than guessed.
pub fn parse_method(text: &str) -> Result<Method, String> {
    let method = Method::from_bytes(text.as_bytes())
        .map_err(|_| format!("`{text}` is not a valid HTTP method token"))?;
    let upper = text.to_ascii_uppercase();
    if text != upper && Method::from_bytes(upper.as_bytes()).is_ok_and(|m| is_standard(&m)) {
        return Err(format!(
            "`{text}`: methods are case-sensitive; write `{upper}`"
        ));
    }
    Ok(method)
}

/// A list of methods, each a token written once; errors are at `[i]`. Whether an empty list
/// is allowed is the caller's to say.
pub fn parse_methods(list: &[String]) -> Result<Vec<Method>, ConfigError> {
    let mut methods: Vec<Method> = Vec::with_capacity(list.len());
    for (i, text) in list.iter().enumerate() {
        let at = |reason: String| ConfigError::new(format!("[{i}]"), reason);
        let method = parse_method(text).map_err(at)?;
        if methods.contains(&method) {
            return Err(at(format!("`{text}` is listed twice")));
        }
        methods.push(method);
    }
    Ok(methods)
}

fn is_standard(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ]
    .contains(method)
}
