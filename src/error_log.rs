//! Where the server's own log (tracing: errors, warnings, info) goes: standard error, or the
//! `[logging] error-log` file, which SIGHUP reopens so that logrotate can rename it. Lines are
//! never lost in the switch: each is written whole to one place or the other.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// A handle on the log's destination, shared by the tracing writer and whoever reopens it.
#[derive(Clone, Default)]
pub struct ErrorLog {
    file: Arc<Mutex<Option<(PathBuf, File)>>>,
}

impl ErrorLog {
    /// Write to `path` from now on (opened again even when unchanged, after a rotation), or to
    /// standard error for `None`. A file that cannot be opened leaves the log on standard error,
    /// which says why.
    pub fn set_path(&self, path: Option<&Path>) {
        let opened = path.and_then(|p| {
            match OpenOptions::new().create(true).append(true).open(p) {
                Ok(f) => Some((p.to_path_buf(), f)),
                Err(e) => {
                    let _ = writeln!(
                        io::stderr(),
                        "floecast: cannot open the error log {}: {e}; logging to standard error",
                        p.display()
                    );
                    None
                }
            }
        });
        *lock(&self.file) = opened;
    }
}

/// One log line on its way out: buffered, then written in one call where it belongs.
pub struct LineWriter {
    log: ErrorLog,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let mut file = lock(&self.log.file);
        match file.as_mut() {
            Some((_, f)) => {
                let _ = f.write_all(&strip_ansi(&self.line));
            }
            None => {
                let _ = io::stderr().write_all(&self.line);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ErrorLog {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            log: self.clone(),
            line: Vec::with_capacity(256),
        }
    }
}

/// The line without terminal colour codes (`ESC [ ... letter`): colours are chosen once, for
/// a terminal on standard error, before the config names a file.
fn strip_ansi(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b && line.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < line.len() && !line[i].is_ascii_alphabetic() {
                i += 1;
            }
            i += 1;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped() {
        assert_eq!(
            strip_ansi(b"\x1b[2m2026\x1b[0m \x1b[33m WARN\x1b[0m x\n"),
            b"2026  WARN x\n"
        );
        assert_eq!(strip_ansi(b"plain\n"), b"plain\n");
        assert_eq!(strip_ansi(b"cut \x1b["), b"cut ");
    }

    #[test]
    fn lines_follow_the_path_after_a_rename() {
        let dir = std::env::temp_dir().join(format!("floecast-errlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log");
        let log = ErrorLog::default();
        log.set_path(Some(&path));
        use tracing_subscriber::fmt::MakeWriter;
        writeln!(log.make_writer(), "one").unwrap();
        std::fs::rename(&path, dir.join("error.log.1")).unwrap();
        writeln!(log.make_writer(), "two").unwrap();
        log.set_path(Some(&path));
        writeln!(log.make_writer(), "three").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("error.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
