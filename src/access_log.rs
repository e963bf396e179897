//! The access log in icecast's format (spec §6), one line per client at close:
//! `IP - USER [dd/Mon/YYYY:HH:MM:SS +zzzz] "METHOD URI PROTO/VER" STATUS BYTES "REFERER" "UA" SECONDS`.
//! Log analysers written for icecast2 read it unchanged. Only a request's record
//! (`net::record`) writes here, once, when the request is done.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::sync::lock;

#[derive(Debug)]
pub struct AccessLog {
    file: Mutex<Option<(PathBuf, File)>>,
}

/// What one finished request contributes to the log (see `net::record`, which writes it).
#[derive(Debug, Clone, Copy)]
pub struct AccessEntry<'a> {
    pub ip: IpAddr,
    pub user: Option<&'a str>,
    /// `METHOD PATH PROTO/VER`.
    pub request: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub seconds: u64,
}

impl AccessLog {
    pub fn open(path: Option<&Path>) -> Self {
        let log = AccessLog {
            file: Mutex::new(None),
        };
        log.reopen(path);
        log
    }

    /// (Re)open the file, e.g. after log rotation and SIGHUP.
    pub fn reopen(&self, path: Option<&Path>) {
        let opened =
            path.and_then(
                |p| match OpenOptions::new().create(true).append(true).open(p) {
                    Ok(f) => Some((p.to_path_buf(), f)),
                    Err(e) => {
                        tracing::error!("cannot open access log {}: {e}", p.display());
                        None
                    }
                },
            );
        *lock(&self.file) = opened;
    }

    pub fn log(&self, entry: &AccessEntry) {
        let line = format_line(entry, chrono::Local::now().fixed_offset());
        let mut file = lock(&self.file);
        match file.as_mut() {
            Some((_, f)) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => tracing::info!(target: "access", "{}", line.trim_end()),
        }
    }
}

/// icecast replaces `"`, backquote, backslash and control characters with `.`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c < ' ' || c == '"' || c == '`' || c == '\\' {
                '.'
            } else {
                c
            }
        })
        .collect()
}

pub fn format_line(e: &AccessEntry, now: chrono::DateTime<chrono::FixedOffset>) -> String {
    format!(
        "{} - {} [{}] \"{}\" {} {} \"{}\" \"{}\" {}\n",
        e.ip,
        e.user
            .filter(|u| !u.is_empty())
            .map(clean)
            .unwrap_or_else(|| "-".into()),
        now.format("%d/%b/%Y:%H:%M:%S %z"),
        clean(e.request),
        e.status,
        e.bytes,
        e.referer.map(clean).unwrap_or_else(|| "-".into()),
        e.user_agent.map(clean).unwrap_or_else(|| "-".into()),
        e.seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn icecast_line_format() {
        let tz = chrono::FixedOffset::east_opt(0).unwrap();
        let now = tz.with_ymd_and_hms(2023, 6, 6, 9, 40, 0).unwrap();
        let e = AccessEntry {
            ip: [192, 0, 2, 7].into(),
            user: None,
            request: "GET /live HTTP/1.1",
            status: 200,
            bytes: 3215892,
            referer: None,
            user_agent: Some("VLC/3.0.18 LibVLC/3.0.18"),
            seconds: 201,
        };
        assert_eq!(
            format_line(&e, now),
            "192.0.2.7 - - [06/Jun/2023:09:40:00 +0000] \"GET /live HTTP/1.1\" 200 3215892 \"-\" \"VLC/3.0.18 LibVLC/3.0.18\" 201\n"
        );
        let e = AccessEntry {
            user_agent: Some("a\"b\\c"),
            user: Some("source"),
            ..e
        };
        assert!(
            format_line(&e, now).contains("- source [")
                && format_line(&e, now).contains("\"a.b.c\"")
        );
    }
}
