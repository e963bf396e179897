//! The STATS method's event lines (icecast2): every stat as `EVENT <global|mount> <name>
//! <value>\n`, then each change between two snapshots (`EVENT <mount> <name> null` for a stat
//! that went away, `EVENT <mount> null null` for a mount that went away). Pure: the
//! connection that sends them lives in `crate::admin::events`.

use std::collections::BTreeMap;

use super::icestats::{global_stats, mount_stats, visible_mounts};
use super::snapshot::ServerSnapshot;

/// Stats by scope (`global` or a mount name), then by name, as text.
pub type StatsTable = BTreeMap<String, BTreeMap<String, String>>;

const GLOBAL: &str = "global";

/// Everything `/admin/stats` shows (hidden mounts included, as for any admin).
pub fn stats_table(snap: &ServerSnapshot) -> StatsTable {
    let mut table = StatsTable::new();
    let global = global_stats(snap)
        .into_iter()
        .map(|(k, v)| (k, v.text()))
        .collect();
    table.insert(GLOBAL.to_string(), global);
    for m in visible_mounts(snap, true, None) {
        let values = mount_stats(snap, m)
            .into_iter()
            .map(|(k, v)| (k, v.text()))
            .collect();
        table.insert(m.name.clone(), values);
    }
    table
}

/// One protocol line. Values are single-line by construction of the protocol; a title with
/// a line break must not inject events, so breaks become spaces.
fn push_event(out: &mut String, scope: &str, name: &str, value: &str) {
    out.push_str("EVENT ");
    out.push_str(scope);
    out.push(' ');
    out.push_str(name);
    out.push(' ');
    out.extend(
        value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
    out.push('\n');
}

/// The events that turn `old` into `new`: global scope first, then mounts by name.
pub fn diff(old: &StatsTable, new: &StatsTable, out: &mut String) {
    let scopes = new
        .keys()
        .filter(|k| *k == GLOBAL)
        .chain(new.keys().filter(|k| *k != GLOBAL));
    for scope in scopes {
        let now = &new[scope];
        let before = old.get(scope);
        for (name, value) in now {
            if before.and_then(|b| b.get(name)) != Some(value) {
                push_event(out, scope, name, value);
            }
        }
        for name in before.into_iter().flat_map(|b| b.keys()) {
            if !now.contains_key(name) {
                push_event(out, scope, name, "null");
            }
        }
    }
    for scope in old.keys() {
        if !new.contains_key(scope) {
            push_event(out, scope, "null", "null");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[(&str, &str)])]) -> StatsTable {
        entries
            .iter()
            .map(|(scope, kv)| {
                (
                    scope.to_string(),
                    kv.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn first_diff_is_a_full_dump_global_first() {
        let new = table(&[
            ("/a", &[("listeners", "1")]),
            ("global", &[("admin", "x"), ("clients", "2")]),
        ]);
        let mut out = String::new();
        diff(&StatsTable::new(), &new, &mut out);
        assert_eq!(
            out,
            "EVENT global admin x\nEVENT global clients 2\nEVENT /a listeners 1\n"
        );
    }

    #[test]
    fn changes_removals_and_gone_mounts() {
        let old = table(&[
            ("global", &[("sources", "2")]),
            ("/a", &[("listeners", "1"), ("title", "Old")]),
            ("/b", &[("listeners", "0")]),
        ]);
        let new = table(&[
            ("global", &[("sources", "1")]),
            ("/a", &[("listeners", "2")]),
        ]);
        let mut out = String::new();
        diff(&old, &new, &mut out);
        assert_eq!(
            out,
            "EVENT global sources 1\nEVENT /a listeners 2\nEVENT /a title null\nEVENT /b null null\n"
        );
        let mut none = String::new();
        diff(&new, &new, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn line_breaks_cannot_inject_events() {
        let mut out = String::new();
        push_event(&mut out, "/a", "title", "x\nEVENT global admin evil");
        assert_eq!(out, "EVENT /a title x EVENT global admin evil\n");
    }
}
