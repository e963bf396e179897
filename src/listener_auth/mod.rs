//! Listener authentication, icecast2's two authenticators: htpasswd, a file of
//! `user:md5hex(password)` lines (icecast's own format, not Apache's) cached and re-read when
//! it changes on disk or the config is reloaded, which `manageauth` edits by rewriting it
//! atomically; and url (`url`). The htpasswd cache is this module's own, reached through
//! [`htpasswd_files`]; nothing else holds it.

pub mod url;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};

use crate::config::{AuthBackend, Config, ListenerAuth};
use crate::http::RequestHead;
use crate::http::request::{basic_auth, secret_eq};
use crate::sync::lock;

/// Largest htpasswd file read; a user list is a few KiB, so anything near this is a mistake.
pub const MAX_FILE: u64 = 4 << 20;
/// How often a cached file is checked for changes (one `stat` per file at most this often).
const RECHECK: Duration = Duration::from_secs(1);

/// Users of one file: name → lower-case md5 hex of the password, sorted by name as icecast's
/// AVL tree lists them.
pub type Users = BTreeMap<String, String>;

/// What identifies a version of the file on disk.
type Stamp = Option<(SystemTime, u64)>;

struct Cached {
    stamp: Stamp,
    checked: Instant,
    /// The config the file was read under; a reloaded config reads it afresh (SIGHUP re-reads
    /// htpasswd files, even one edited within the same second). Held weakly, so the address
    /// cannot be reused by a later config.
    config: Weak<Config>,
    users: Arc<Users>,
}

/// The htpasswd files of the process, shared by every mount and server (two mounts may
/// share a file).
pub fn htpasswd_files() -> &'static HtpasswdFiles {
    static FILES: LazyLock<HtpasswdFiles> = LazyLock::new(HtpasswdFiles::default);
    &FILES
}

/// Every htpasswd file in use, by path.
#[derive(Default)]
pub struct HtpasswdFiles {
    files: Mutex<HashMap<PathBuf, Cached>>,
    /// Serialises rewrites, so two `manageauth` calls never lose each other's change.
    writing: Mutex<()>,
    tmp_counter: AtomicU64,
}

impl std::fmt::Debug for HtpasswdFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtpasswdFiles").finish_non_exhaustive()
    }
}

/// Result of `manageauth`'s add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    Exists,
}

/// The md5 hex digest icecast stores for a password.
pub fn md5_hex(password: &str) -> String {
    let digest = Md5::digest(password.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether a name can be written to the file and used in a Basic login.
pub fn valid_username(user: &str) -> bool {
    !user.is_empty() && !user.contains([':', '\r', '\n']) && !user.starts_with('#')
}

fn stamp(path: &Path) -> io::Result<Stamp> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some((
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file's text; a missing file is empty (icecast starts with no users then, and
/// `manageauth add` creates it).
fn read_text(path: &Path) -> io::Result<String> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE + 1), &mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// icecast's parse: skip blank and `#` lines; the hash follows the last `:`.
pub fn parse(text: &str) -> Users {
    let mut users = Users::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.rsplit_once(':') {
            Some((user, hash)) if !user.is_empty() => {
                users.insert(user.to_string(), hash.trim().to_ascii_lowercase());
            }
            _ => tracing::warn!("htpasswd: ignoring a line without user:hash"),
        }
    }
    users
}

fn line_user(line: &str) -> Option<&str> {
    let line = line.trim_end_matches('\r');
    if line.starts_with('#') {
        return None;
    }
    line.rsplit_once(':').map(|(u, _)| u)
}

impl HtpasswdFiles {
    /// The users of `path`, from the cache while the file is unchanged and `config` is the
    /// one it was read under.
    pub fn users(&self, path: &Path, config: &Arc<Config>) -> io::Result<Arc<Users>> {
        let now = Instant::now();
        let same_config = |c: &Cached| std::ptr::eq(c.config.as_ptr(), Arc::as_ptr(config));
        {
            let files = lock(&self.files);
            if let Some(c) = files.get(path) {
                if same_config(c) && now.duration_since(c.checked) < RECHECK {
                    return Ok(c.users.clone());
                }
            }
        }
        let current = stamp(path)?;
        {
            let mut files = lock(&self.files);
            if let Some(c) = files.get_mut(path) {
                if same_config(c) && c.stamp == current {
                    c.checked = now;
                    return Ok(c.users.clone());
                }
            }
        }
        let users = Arc::new(parse(&read_text(path)?));
        tracing::debug!(path = %path.display(), users = users.len(), "htpasswd file (re)read");
        lock(&self.files).insert(
            path.to_path_buf(),
            Cached {
                stamp: current,
                checked: now,
                config: Arc::downgrade(config),
                users: users.clone(),
            },
        );
        Ok(users)
    }

    /// Does `user` with `password` appear in `path`? An unreadable file refuses everyone.
    pub fn check(&self, path: &Path, config: &Arc<Config>, user: &str, password: &str) -> bool {
        match self.users(path, config) {
            Ok(users) => {
                // Hash first and compare in constant time whether or not the user exists.
                let given = md5_hex(password);
                let stored = users.get(user);
                let ok = secret_eq(&given, stored.map_or("", String::as_str));
                ok && stored.is_some()
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "htpasswd file unreadable: {e}");
                false
            }
        }
    }

    /// `manageauth add`: append `user:md5hex(password)` unless the user exists.
    pub fn add(&self, path: &Path, user: &str, password: &str) -> io::Result<Added> {
        let _w = lock(&self.writing);
        let text = read_text(path)?;
        if parse(&text).contains_key(user) {
            return Ok(Added::Exists);
        }
        let mut out = text;
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{user}:{}\n", md5_hex(password)));
        self.replace(path, &out)?;
        Ok(Added::Added)
    }

    /// `manageauth delete`: drop the user's lines, keeping everything else (comments too).
    /// Returns whether the user was there.
    pub fn delete(&self, path: &Path, user: &str) -> io::Result<bool> {
        let _w = lock(&self.writing);
        let text = read_text(path)?;
        let mut found = false;
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            if line_user(line) == Some(user) {
                found = true;
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        if found {
            self.replace(path, &out)?;
        }
        Ok(found)
    }

    /// Write `text` to a temporary file beside `path`, flush it to disk, then rename it over
    /// `path`: readers (and a crash) see the old file or the new one, never half of one.
    fn replace(&self, path: &Path, text: &str) -> io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "htpasswd".into());
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            if let Ok(meta) = fs::metadata(path) {
                f.set_permissions(meta.permissions())?;
            }
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        // Whatever happened, the next read must look at the disk again.
        lock(&self.files).remove(path);
        result
    }
}

/// An accepted listener.
#[derive(Debug)]
pub struct Login {
    /// The user it logged in as (a url backend may accept anonymous listeners).
    pub user: Option<String>,
    /// A url backend's `icecast-auth-timelimit`.
    pub timelimit: Option<std::time::Duration>,
    /// Whom to tell when it leaves (url `listener_remove`); boxed, as it lives as long as
    /// the listener.
    pub on_leave: Option<Box<url::Removal>>,
}

/// A listener's login on a mount guarded by `auth`; `None` means refuse with 401.
pub async fn login(
    server: &crate::server::Server,
    auth: &ListenerAuth,
    head: &RequestHead,
    peer: &std::net::SocketAddr,
    client_id: u64,
) -> Option<Login> {
    let creds = head.header("authorization").and_then(basic_auth);
    match &auth.backend {
        AuthBackend::Htpasswd { filename } => {
            let (user, pass) = creds?;
            htpasswd_files()
                .check(filename, &server.config(), &user, &pass)
                .then_some(Login {
                    user: Some(user),
                    timelimit: None,
                    on_leave: None,
                })
        }
        AuthBackend::Url(u) => url::listener_add(server, u, head, peer, client_id, creds).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hex_matches_icecast() {
        // `printf secret | md5sum`
        assert_eq!(md5_hex("secret"), "5ebe2294ecd0e0f08eab7690d2a6ee69");
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn parses_icecast_lines() {
        let u = parse("# comment\nalice:5EBE2294ECD0E0F08EAB7690D2A6EE69\r\n\nbad line\nbob:x\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u["alice"], "5ebe2294ecd0e0f08eab7690d2a6ee69");
        assert_eq!(u["bob"], "x");
    }

    #[test]
    fn add_delete_and_check_rewrite_the_file() {
        let dir = std::env::temp_dir().join(format!("floecast-htpasswd-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("users");
        let _ = fs::remove_file(&path);
        fs::write(&path, "# keep me\nalice:5ebe2294ecd0e0f08eab7690d2a6ee69").unwrap();
        let files = HtpasswdFiles::default();
        let config = Arc::new(Config::default());
        assert!(files.check(&path, &config, "alice", "secret"));
        assert!(!files.check(&path, &config, "alice", "wrong"));
        assert!(!files.check(&path, &config, "nobody", "secret"));
        assert_eq!(files.add(&path, "bob", "pw").unwrap(), Added::Added);
        assert_eq!(files.add(&path, "bob", "other").unwrap(), Added::Exists);
        assert!(files.check(&path, &config, "bob", "pw"));
        assert!(files.delete(&path, "alice").unwrap());
        assert!(!files.delete(&path, "alice").unwrap());
        assert!(!files.check(&path, &config, "alice", "secret"));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("# keep me\nbob:{}\n", md5_hex("pw")));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_config_reads_the_file_afresh() {
        let dir = std::env::temp_dir().join(format!("floecast-htreload-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("users");
        fs::write(&path, "alice:5ebe2294ecd0e0f08eab7690d2a6ee69\n").unwrap();
        let files = HtpasswdFiles::default();
        let old = Arc::new(Config::default());
        assert!(files.check(&path, &old, "alice", "secret"));
        // Edited behind the cache's back, within its recheck interval, same length.
        fs::write(&path, "alice:0000000000000000000000000000000e\n").unwrap();
        assert!(files.check(&path, &old, "alice", "secret"), "cached");
        let reloaded = Arc::new(Config::default());
        assert!(!files.check(&path, &reloaded, "alice", "secret"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn usernames_that_would_break_the_file_are_refused() {
        assert!(valid_username("alice"));
        assert!(!valid_username(""));
        assert!(!valid_username("a:b"));
        assert!(!valid_username("a\nb"));
        assert!(!valid_username("#a"));
    }
}
