//! systemd's readiness protocol (`Type=notify`): one datagram to `$NOTIFY_SOCKET` for each
//! state change: READY=1 once the sockets are bound, RELOADING=1 then READY=1 around a SIGHUP
//! reload, STOPPING=1 at shutdown. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.
//!
//! The protocol is a few lines on a `UnixDatagram`, so it is written here rather than taken
//! from a crate; the only help needed is the CLOCK_MONOTONIC time systemd (v253+) wants with
//! RELOADING=1, which `rustix` reads without `unsafe`.

use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Start-up is done: every listen socket is bound and accepting.
pub fn ready() {
    notify("READY=1\nSTATUS=serving\n");
}

/// A reload (SIGHUP) begins; [`ready`] follows when it is over, whatever its outcome.
pub fn reloading() {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
    notify(&format!(
        "RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC={usec}\n"
    ));
}

/// A graceful shutdown begins.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=shutting down\n");
}

/// Send `state` to the service manager, if there is one. Failures are logged, never fatal:
/// the server runs the same with or without systemd.
fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        tracing::warn!("cannot notify systemd at {path:?}: {e}");
    }
}

fn send(path: &OsString, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    // `@name` is a socket in the abstract namespace (systemd uses both kinds).
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("floecast-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send(&path.clone().into_os_string(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");

        let name = format!("floecast-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        send(&OsString::from(format!("@{name}")), "STOPPING=1\n").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
