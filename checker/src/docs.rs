//! The field tables of docs/config.md, read as the source of the schema's descriptions and
//! defaults: one text says what a field means, wherever it is read (the reference, an
//! editor's tooltip).

/// One row of a field table: the fields it names (a row may name two: `limit`, `window`)
/// and what it says of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub fields: Vec<String>,
    /// The row's meaning, its value column or its reference, as plain text.
    pub description: String,
    /// The default column as written (without its links), if the table has one.
    pub default: Option<String>,
}

/// A field table: the heading it is under and its rows.
#[derive(Debug, Clone)]
pub struct Table {
    pub heading: String,
    pub rows: Vec<Row>,
}

/// Every table of `markdown` whose first column is `field`, in order.
pub fn field_tables(markdown: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut heading = String::new();
    let mut columns: Option<Vec<String>> = None;
    for line in markdown.lines() {
        if let Some(title) = line.strip_prefix('#') {
            heading = title.trim_start_matches('#').trim().to_string();
            columns = None;
            continue;
        }
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = cells(line);
        match &columns {
            None if cells.first().map(String::as_str) == Some("field") => {
                tables.push(Table {
                    heading: heading.clone(),
                    rows: Vec::new(),
                });
                columns = Some(cells);
            }
            None => {}
            Some(_) if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) => {}
            Some(names) => {
                if let (Some(row), Some(table)) = (row(names, &cells), tables.last_mut()) {
                    table.rows.push(row);
                }
            }
        }
    }
    tables
}

/// A table line's cells, trimmed (`\|` is a `|` inside a cell).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        if c == '|' && !escaped {
            cells.push(String::new());
            continue;
        }
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if let Some(cell) = cells.last_mut() {
            if escaped && c != '|' {
                cell.push('\\');
            }
            cell.push(c);
        }
        escaped = false;
    }
    cells.iter().map(|c| c.trim().to_string()).collect()
}

fn row(columns: &[String], cells: &[String]) -> Option<Row> {
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| c.starts_with(name))
            .and_then(|i| cells.get(i))
            .map(|cell| plain(cell))
    };
    let fields = code_spans(cells.first()?);
    if fields.is_empty() {
        return None;
    }
    let description = column("meaning")
        .or_else(|| column("value"))
        .or_else(|| column("reference").map(|r| format!("See {r} in docs/config.md.")))?;
    Some(Row {
        fields,
        description,
        default: column("default"),
    })
}

/// The code spans of a cell (`` `limit`, `window` `` gives `limit` and `window`).
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Markdown links written as their text.
fn plain(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    let mut rest = cell;
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let link = after
            .find("](")
            .and_then(|mid| after[mid..].find(')').map(|close| (mid, mid + close)));
        match link {
            Some((mid, close)) => {
                out.push_str(&after[1..mid]);
                rest = &after[close + 1..];
            }
            None => {
                out.push('[');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_rows_and_links() {
        let md = "# A\n\n| field | type | default | meaning |\n| --- | --- | --- | --- |\n\
                  | `a` | string | `x` | see [B](#b) |\n| `b`, `c` (defaults only) | list | none | one \\| two |\n\n\
                  | header | value |\n| --- | --- |\n| `h` | v |\n## B\n| field | value | default |\n| --- | --- | --- |\n| `d` | `1` or `2` | `1` |\n";
        let tables = field_tables(md);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].heading, "A");
        assert_eq!(
            tables[0].rows,
            vec![
                Row {
                    fields: vec!["a".into()],
                    description: "see B".into(),
                    default: Some("`x`".into())
                },
                Row {
                    fields: vec!["b".into(), "c".into()],
                    description: "one | two".into(),
                    default: Some("none".into())
                },
            ]
        );
        assert_eq!(tables[1].heading, "B");
        assert_eq!(tables[1].rows[0].description, "`1` or `2`");
    }
}
