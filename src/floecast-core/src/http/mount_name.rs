//! Which request paths may name a mount. The server's own endpoints (status documents,
//! metrics, the API, admin, the status page) are reserved, so a source cannot shadow them,
//! and a name with control characters is refused before it reaches a log or a header.

/// Why a path cannot be a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MountNameError {
    #[error("a mount name must start with '/'")]
    NoSlash,
    #[error("a mount name must not contain control characters")]
    Control,
    #[error("{0} is one of the server's own paths")]
    Reserved(&'static str),
}

/// Exact paths the server answers itself.
const RESERVED_EXACT: &[&str] = &[
    "/",
    "/status-json.xsl",
    "/status.xsl",
    "/server_version.xsl",
    "/metrics",
    "/admin",
    "/admin.cgi",
    "/api",
];

/// Path prefixes (a folder) the server answers itself.
const RESERVED_PREFIXES: &[&str] = &["/admin/", "/api/"];

/// Check a (percent-decoded) mount name. Files of the web root are checked by the caller,
/// which can look at the disk.
pub fn check(name: &str) -> Result<(), MountNameError> {
    if !name.starts_with('/') {
        return Err(MountNameError::NoSlash);
    }
    if name.chars().any(char::is_control) {
        return Err(MountNameError::Control);
    }
    if let Some(p) = RESERVED_EXACT.iter().find(|p| **p == name) {
        return Err(MountNameError::Reserved(p));
    }
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(MountNameError::Reserved(p));
    }
    Ok(())
}

/// Request-derived text for a log line: control characters (CR, LF, ESC, …) and backslashes
/// are written as escapes, so a line in the log is always one line the server wrote.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\r' => f.write_str("\\r")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paths_and_control_characters_are_refused() {
        assert_eq!(check("/live.mp3"), Ok(()));
        assert_eq!(check("/dj/one"), Ok(()));
        assert_eq!(check("/apiary"), Ok(()));
        assert_eq!(check("/administrator.ogg"), Ok(()));
        assert_eq!(check("live"), Err(MountNameError::NoSlash));
        assert_eq!(check("/a\r\nX-Inj: 1"), Err(MountNameError::Control));
        assert_eq!(check("/a\u{7f}"), Err(MountNameError::Control));
        for own in ["/", "/status-json.xsl", "/metrics", "/api", "/admin.cgi"] {
            assert_eq!(check(own), Err(MountNameError::Reserved(own)), "{own}");
        }
        assert_eq!(check("/api/status"), Err(MountNameError::Reserved("/api/")));
        assert_eq!(
            check("/admin/stats"),
            Err(MountNameError::Reserved("/admin/"))
        );
    }

    #[test]
    fn escaped_text_stays_on_one_line() {
        let s = Escaped("/a\r\nX-Inj: 1\x1b[31m\\").to_string();
        assert_eq!(s, "/a\\r\\nX-Inj: 1\\u{1b}[31m\\\\");
        assert_eq!(Escaped("plain é").to_string(), "plain é");
    }
}
