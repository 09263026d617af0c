//! One owner per noun, checked in the sources: only `src/cases/` changes `cases`, only the timeline
//! (`src/cases/timeline.rs`) writes `case_events`, only `src/cases/consents.rs` writes `consents`, and only
//! the reports store (`src/reports/`) writes `reports`. Everyone else calls their functions.

use std::path::Path;

/// (table, the only folder or file allowed to write it).
const OWNERS: [(&str, &str); 4] = [
    ("cases", "src/cases/"),
    ("case_events", "src/cases/timeline.rs"),
    ("consents", "src/cases/consents.rs"),
    ("reports", "src/reports/"),
];

/// The code of a file without comments (line comments and doc comments; the sources use no block comments).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names a file gives a schema table (`cases`, and `cases_t` from `use ...::{cases as cases_t}`).
fn names_of(code: &str, table: &str) -> Vec<String> {
    let mut names = vec![table.to_owned()];
    let alias = format!("{table} as ");
    for (at, _) in code.match_indices(&alias) {
        let rest = &code[at + alias.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

/// Where a file writes `table`: diesel's `update(t::table`, `insert_into(t::table`, `delete(t::table`, or
/// SQL text that updates, inserts into or deletes from it.
fn writes(code: &str, table: &str) -> Vec<String> {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found = Vec::new();
    for name in names_of(code, table) {
        for verb in ["update(", "insert_into(", "delete("] {
            let pattern = format!("{verb}{name}::table");
            if compact.contains(&pattern) {
                found.push(pattern);
            }
        }
    }
    let sql = code
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    for verb in ["update ", "insert into ", "delete from "] {
        for end in [" ", "(", "\""] {
            let pattern = format!("{verb}{table}{end}");
            if sql.contains(&pattern) {
                found.push(pattern);
            }
        }
    }
    found
}

#[test]
fn only_the_owning_module_writes_cases_the_timeline_and_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    crate::helpers::rust_files(&root.join("src"), &mut files);
    let mut offenders = Vec::new();
    let mut seen = [false; OWNERS.len()];
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for (i, (table, owner)) in OWNERS.iter().enumerate() {
            let found = writes(&code, table);
            if found.is_empty() {
                continue;
            }
            if relative.starts_with(owner) {
                seen[i] = true;
            } else {
                offenders.push(format!("{relative} writes `{table}` ({})", found.join(", ")));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only the owner writes these tables; call its functions instead:\n{}",
        offenders.join("\n")
    );
    // The scan finds the owners' own writes, so it would find anyone else's.
    assert_eq!(
        seen,
        [true; OWNERS.len()],
        "the scan must see each owner's writes"
    );
}

#[test]
fn the_scan_sees_aliases_multiline_calls_and_sql() {
    let sneaky = "use crate::db::schema::{cases as c};\nfn f() { diesel::update(\n    c::table.find(x)) }";
    assert!(!writes(&code_of(sneaky), "cases").is_empty());
    let sql = "diesel::sql_query(\"UPDATE cases SET status = 'closed'\")";
    assert!(!writes(sql, "cases").is_empty());
    let lock = "diesel::sql_query(\"SELECT id FROM cases WHERE id = $1 FOR UPDATE\")";
    assert!(writes(lock, "cases").is_empty());
    assert!(writes(&code_of("// diesel::update(cases::table)"), "cases").is_empty());
}
