//! The one reconcile plan of every supervised task (pull relays, the master poller, push
//! relays, P2PSP teams): compare what runs with what the config wants, by key, and say what
//! to keep, restart, stop and start. Sans-IO: it only compares; the supervisor acts.

/// What reconciling a running set with a wanted one does, by key. Each wanted key is in
/// exactly one of `keep`, `restart` and `start` (in wanted order); `stop` holds running keys
/// that are no longer wanted (in running order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// Same key, same settings: leave running.
    pub keep: Vec<K>,
    /// Same key, other settings: stop the running one, start the wanted one.
    pub restart: Vec<K>,
    /// Running, no longer wanted.
    pub stop: Vec<K>,
    /// Wanted, not running.
    pub start: Vec<K>,
}

/// Diff `running` against `wanted`. Keys are unique within each side (the config loader
/// refuses two relays for one local mount); should one repeat, its first entry counts.
pub fn plan<K: PartialEq + Clone, V: PartialEq>(running: &[(K, &V)], wanted: &[(K, V)]) -> Plan<K> {
    let mut p = Plan {
        keep: Vec::new(),
        restart: Vec::new(),
        stop: Vec::new(),
        start: Vec::new(),
    };
    let seen = |list: &[K], k: &K| list.iter().any(|x| x == k);
    for (k, v) in wanted {
        if seen(&p.keep, k) || seen(&p.restart, k) || seen(&p.start, k) {
            continue;
        }
        match running.iter().find(|(rk, _)| rk == k) {
            Some((_, rv)) if *rv == v => p.keep.push(k.clone()),
            Some(_) => p.restart.push(k.clone()),
            None => p.start.push(k.clone()),
        }
    }
    for (k, _) in running {
        if !wanted.iter().any(|(wk, _)| wk == k) && !seen(&p.stop, k) {
            p.stop.push(k.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(items: &[(&str, u32)]) -> Vec<(String, u32)> {
        items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn refs(items: &[(String, u32)]) -> Vec<(String, &u32)> {
        items.iter().map(|(k, v)| (k.clone(), v)).collect()
    }

    fn keys(items: &[&str]) -> Vec<String> {
        items.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn plan_sorts_keys_into_keep_restart_stop_start() {
        let running = kv(&[("/a", 1), ("/b", 2), ("/c", 3)]);
        let wanted = kv(&[("/d", 4), ("/c", 3), ("/a", 9)]);
        let p = plan(&refs(&running), &wanted);
        assert_eq!(p.keep, keys(&["/c"]));
        assert_eq!(p.restart, keys(&["/a"]));
        assert_eq!(p.stop, keys(&["/b"]));
        assert_eq!(p.start, keys(&["/d"]));
    }

    #[test]
    fn plan_of_identical_sets_keeps_everything() {
        let set = kv(&[("/a", 1), ("/b", 2)]);
        let p = plan(&refs(&set), &set);
        assert_eq!(p.keep, keys(&["/a", "/b"]));
        assert!(p.restart.is_empty() && p.stop.is_empty() && p.start.is_empty());
    }

    #[test]
    fn plan_from_and_to_nothing() {
        let set = kv(&[("/a", 1), ("/b", 2)]);
        let p = plan(&[], &set);
        assert_eq!(p.start, keys(&["/a", "/b"]));
        let p = plan(&refs(&set), &[]);
        assert_eq!(p.stop, keys(&["/a", "/b"]));
        assert!(p.keep.is_empty() && p.start.is_empty());
    }

    #[test]
    fn plan_counts_a_repeated_key_once() {
        let running = kv(&[("/a", 1), ("/a", 1)]);
        let p = plan(&refs(&running), &kv(&[("/a", 2), ("/a", 1)]));
        assert_eq!(p.restart, keys(&["/a"]));
        assert!(p.keep.is_empty() && p.stop.is_empty() && p.start.is_empty());
    }
}
