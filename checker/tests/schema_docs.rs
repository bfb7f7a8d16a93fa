//! The schema and docs/config.md describe the same fields: every property of a documented
//! definition has a row in its table (with the description the schema publishes), and every
//! row names a property.

use hardening_check::docs;
use hardening_check::schema::{self, CONFIG_DOCS, DOCUMENTED};

#[test]
fn every_documented_definition_matches_its_table() {
    let mut generated = schema::generate();
    let tables = docs::field_tables(CONFIG_DOCS);
    let mut problems = Vec::new();
    for (definition, heading, index) in DOCUMENTED {
        let Some(table) = tables.iter().filter(|t| t.heading == *heading).nth(*index) else {
            problems.push(format!("no field table {index} under `{heading}`"));
            continue;
        };
        let Some(properties) = schema::properties_mut(&mut generated, definition) else {
            problems.push(format!("no definition `{definition}` in the schema"));
            continue;
        };
        let documented: Vec<&String> = table.rows.iter().flat_map(|r| &r.fields).collect();
        for (name, property) in properties.iter() {
            if !documented.contains(&name) {
                problems.push(format!(
                    "`{heading}` has no row for `{name}` ({definition})"
                ));
            } else if property.get("description").is_none() {
                problems.push(format!("`{name}` of {definition} has no description"));
            }
        }
        for name in documented {
            if !properties.contains_key(name) {
                problems.push(format!(
                    "`{heading}` documents `{name}`, which {definition:?} does not have"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn descriptions_and_defaults_come_from_the_docs() {
    let generated = schema::generate();
    let limit = &generated["definitions"]["RawLimit"]["properties"];
    assert_eq!(
        limit["on_error"]["description"],
        "When shared data fails (or a write loses its race 9 times in a row): `allow`, or `deny` \
         (503 problem+json, `code` `rate_limit_unavailable`, `Retry-After: 1`). Default: `allow`."
    );
    assert_eq!(limit["on_error"]["default"], "allow");
    assert_eq!(limit["slots"]["default"], 131072);
    assert_eq!(
        generated["properties"]["route_matching"]["default"],
        "loose"
    );
    // A default that is prose stays in the text only.
    assert!(limit["burst"].get("default").is_none());
}
