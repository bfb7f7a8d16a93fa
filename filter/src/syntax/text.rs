//! Text taken from requests and configs, made safe and short, and names made from it.

/// The `:path` without its query string (and without a fragment, which clients should never
/// send but some do).
pub fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// A short, safe excerpt of user input for a `detail`: at most `max_chars` characters, control
/// characters replaced, an ellipsis when cut.
pub fn excerpt(input: &str, max_chars: usize) -> String {
    let mut out: String = input
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if input.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// A route name as a metric name segment: letters, digits and `_`.
pub fn label(name: &str) -> String {
    let label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let label = label.trim_matches('_').to_string();
    if label.is_empty() {
        "root".into()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_and_neutralises() {
        assert_eq!(excerpt("hello", 10), "hello");
        assert_eq!(excerpt("hello world", 5), "hello…");
        assert_eq!(excerpt("a\nb", 5), "a\u{fffd}b");
        assert_eq!(excerpt("ééé", 2), "éé…");
    }
}
