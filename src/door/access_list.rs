//! icecast's `deny-ip` and `allow-ip` files: one entry per line (an address, a network in
//! CIDR form, or an fnmatch-style pattern with `*` and `?` as icecast's wildcards), blank
//! lines and `#` comments skipped. Re-read when the file's mtime changes, looked at no more
//! often than every [`RECHECK`], and read under a size cap.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::cidr::{Cidr, unmapped};
use crate::sync::lock;

/// How often the file's mtime is looked at, at most.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Largest file read; lines beyond it are ignored, with a warning.
const MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Net(Cidr),
    Pattern(String),
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let line = line.trim();
        let line = line.strip_prefix("::ffff:").unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        if line.contains(['*', '?']) {
            return Some(Entry::Pattern(line.to_string()));
        }
        line.parse().ok().map(Entry::Net)
    }

    fn matches(&self, ip: IpAddr, text: &str) -> bool {
        match self {
            Entry::Net(n) => n.contains(ip),
            Entry::Pattern(p) => glob(p.as_bytes(), text.as_bytes()),
        }
    }
}

/// fnmatch without brackets: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[derive(Default)]
struct Loaded {
    path: Option<PathBuf>,
    mtime: Option<SystemTime>,
    checked: Option<Instant>,
    entries: Option<Vec<Entry>>,
}

/// One list file, as it was last read.
#[derive(Default)]
pub struct AccessList {
    state: Mutex<Loaded>,
}

impl AccessList {
    /// Whether `ip` is listed in the file at `path`: `None` when there is no list (no path,
    /// or a file never read), so an allow list that cannot be read does not lock everyone
    /// out, and a deny list that cannot be read denies no one (both logged).
    pub fn matches(&self, path: Option<&Path>, ip: IpAddr) -> Option<bool> {
        // No lock taken without a list: this runs for every connection.
        let path = path?;
        let mut state = lock(&self.state);
        let now = Instant::now();
        let changed_path = state.path.as_deref() != Some(path);
        if changed_path
            || state
                .checked
                .is_none_or(|c| now.duration_since(c) >= RECHECK)
        {
            state.checked = Some(now);
            if changed_path {
                *state = Loaded {
                    path: Some(path.to_path_buf()),
                    checked: Some(now),
                    ..Loaded::default()
                };
            }
            reread_if_changed(&mut state, path);
        }
        let entries = state.entries.as_ref()?;
        let ip = unmapped(ip);
        let text = ip.to_string();
        Some(entries.iter().any(|e| e.matches(ip, &text)))
    }
}

fn reread_if_changed(state: &mut Loaded, path: &Path) {
    let mtime = match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => {
            if state.entries.is_some() || state.mtime.is_none() {
                tracing::warn!(path = %path.display(), "access list unreadable: {e}");
            }
            state.mtime = Some(SystemTime::UNIX_EPOCH);
            return;
        }
    };
    if state.mtime == Some(mtime) && state.entries.is_some() {
        return;
    }
    state.mtime = Some(mtime);
    let read = std::fs::File::open(path).and_then(|f| {
        use std::io::Read;
        let mut text = String::new();
        f.take(MAX_BYTES).read_to_string(&mut text)?;
        Ok(text)
    });
    match read {
        Ok(text) => {
            let entries: Vec<Entry> = text.lines().filter_map(Entry::parse).collect();
            tracing::info!(path = %path.display(), "{} entries read from the access list", entries.len());
            state.entries = Some(entries);
        }
        Err(e) => tracing::warn!(path = %path.display(), "access list unreadable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_like_fnmatch() {
        assert!(glob(b"192.168.*", b"192.168.1.20"));
        assert!(glob(b"10.0.0.?", b"10.0.0.7"));
        assert!(!glob(b"10.0.0.?", b"10.0.0.17"));
        assert!(glob(b"*", b""));
        assert!(glob(b"*.5", b"1.2.3.5"));
        assert!(!glob(b"*.5", b"1.2.3.50"));
        assert!(glob(b"a*b*c", b"axxbyyc"));
    }

    #[test]
    fn file_lines() {
        let entries: Vec<Entry> =
            "# banned\n\n192.0.2.1\n::ffff:198.51.100.2\n10.0.0.0/8\n203.0.113.*\nnot an ip\n"
                .lines()
                .filter_map(Entry::parse)
                .collect();
        assert_eq!(entries.len(), 4);
        let hit = |s: &str| {
            let ip: IpAddr = s.parse().unwrap();
            entries.iter().any(|e| e.matches(ip, &ip.to_string()))
        };
        assert!(hit("192.0.2.1") && hit("198.51.100.2") && hit("10.9.9.9") && hit("203.0.113.77"));
        assert!(!hit("192.0.2.2"));
    }

    #[test]
    fn reread_when_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("floecast-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("deny");
        std::fs::write(&path, "192.0.2.1\n").unwrap();
        let list = AccessList::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(list.matches(Some(&path), a), Some(true));
        assert_eq!(list.matches(Some(&path), b), Some(false));
        assert_eq!(list.matches(None, a), None);
        std::fs::write(&path, "192.0.2.2\n").unwrap();
        // A different mtime, as a later write would have.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        lock(&list.state).checked = None;
        assert_eq!(list.matches(Some(&path), b), Some(true));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
