//! Running floecast for real: the systemd unit (checked by `systemd-analyze verify`) and its
//! readiness protocol spoken to a notify socket this test binds, the logrotate config rotating
//! a live access log through SIGHUP without losing a line, and `floecast healthcheck`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_floecast");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Kills the child on drop so a failing test leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("floecast-ops-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_accepting(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepts(port) {
        assert!(Instant::now() < deadline, "nothing accepts on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

/// One blocking HTTP/1.0 GET against 127.0.0.1:`port`; the status code (0 if none).
fn get(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nUser-Agent: ops-test/1.0\r\n\r\n");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    split_reply(&reply).0
}

fn config_file(dir: &TempDir, port: u16, extra: &str) -> PathBuf {
    let path = dir.path("floecast.toml");
    std::fs::write(
        &path,
        format!("[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n{extra}"),
    )
    .unwrap();
    path
}

fn spawn(config: &Path, env: &[(&str, &Path)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("NOTIFY_SOCKET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap())
}

#[test]
fn systemd_unit_verifies() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = TempDir::new("unit");
    let unit =
        std::fs::read_to_string(Path::new(REPO).join("config/systemd/floecast.service")).unwrap();
    for key in [
        "Type=notify\n",
        "DynamicUser=yes\n",
        "LogsDirectory=floecast\n",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "ProtectSystem=strict\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n",
        "NoNewPrivileges=yes\n",
    ] {
        assert!(unit.contains(key), "the unit lacks {key:?}");
    }
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let config = config_file(&dir, 8000, "");
    let unit = unit.replace(
        "/usr/local/bin/floecast --config /etc/floecast/floecast.toml",
        &format!("{BIN} --config {}", config.display()),
    );
    assert!(
        unit.contains(BIN),
        "ExecStart not where the test expects it"
    );
    let path = dir.path("floecast.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // verify also reports on unrelated units of the host: only ours matters.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("floecast")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{err}",
        out.status
    );
}

/// The next notification, within `timeout`.
fn next_notification(socket: &UnixDatagram, timeout: Duration) -> String {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => panic!("no notification within {timeout:?}: {e}"),
    }
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let port = free_port();
    let config = config_file(&dir, port, "");
    let mut proc = spawn(&config, &[("NOTIFY_SOCKET", &socket_path)]);

    let ready = next_notification(&socket, Duration::from_secs(10));
    // READY=1 means the port already accepts: no wait, no retry.
    assert!(accepts(port), "READY=1 came before the port accepted");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    signal(proc.0.id(), "HUP");
    let reloading = next_notification(&socket, Duration::from_secs(5));
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        usec.is_some_and(|u| u > 0),
        "RELOADING=1 without MONOTONIC_USEC: {reloading:?}"
    );
    let ready = next_notification(&socket, Duration::from_secs(5));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert_eq!(get(port, "/api/status"), 200, "serving after the reload");

    signal(proc.0.id(), "TERM");
    let stopping = next_notification(&socket, Duration::from_secs(5));
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Requests `/rotate-<tag>-<i>` for i in 0..n; each leaves one access-log line.
fn requests(port: u16, tag: &str, n: usize) {
    for i in 0..n {
        assert_eq!(get(port, &format!("/rotate-{tag}-{i}")), 404);
    }
}

/// Wait until `path` holds `n` lines.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = lines_of(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logrotate_rotates_the_access_log_through_sighup() {
    if !have("logrotate") {
        return;
    }
    let dir = TempDir::new("logrotate");
    let log = dir.path("access.log");
    let pidfile = dir.path("floecast.pid");
    let port = free_port();
    let config = config_file(
        &dir,
        port,
        &format!(
            "[paths]\npidfile = {:?}\n[logging]\naccess-log = {:?}\n",
            pidfile.display().to_string(),
            log.display().to_string()
        ),
    );
    // The shipped config, with its paths moved into the temp dir (postrotate falls back
    // from `systemctl reload` to the pidfile, as it does on a host without the unit).
    let shipped =
        std::fs::read_to_string(Path::new(REPO).join("config/logrotate/floecast")).unwrap();
    assert!(shipped.contains("kill -HUP"), "postrotate must send HUP");
    let rotate_conf = dir.path("logrotate.conf");
    let rewritten = shipped
        .replace(
            "/var/log/floecast/*.log",
            &format!("{}/*.log", dir.0.display()),
        )
        .replace("/run/floecast/floecast.pid", &pidfile.display().to_string())
        .replace("systemctl reload floecast.service", "false");
    assert_ne!(rewritten, shipped);
    std::fs::write(&rotate_conf, rewritten).unwrap();
    let state = dir.path("logrotate.state");
    let out = Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(&state)
        .arg(&rotate_conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let _proc = spawn(&config, &[]);
    wait_accepting(port);
    requests(port, "before", 5);
    assert_eq!(wait_lines(&log, 5).len(), 5, "access log before rotation");
    // A config being edited when logrotate runs must not keep the log in the old file.
    std::fs::write(&config, "[limits]\nclinets = 1\n").unwrap();

    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(&state)
        .arg(&rotate_conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = dir.path("access.log.1");
    assert!(rotated.exists(), "logrotate did not rotate");
    // The HUP is asynchronous: new requests land in the new file once it is reopened.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "access.log not reopened after HUP"
        );
        requests(port, "probe", 1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let probes_before = lines_of(&rotated).len() + lines_of(&log).len() - 5;
    requests(port, "after", 5);
    let new = wait_lines(&log, 5);
    assert!(
        new.iter().filter(|l| l.contains("/rotate-after-")).count() == 5,
        "new lines must go to the new file: {new:?}"
    );
    let old = lines_of(&rotated);
    assert_eq!(
        old.iter().filter(|l| l.contains("/rotate-before-")).count(),
        5,
        "the old lines stay in the rotated file: {old:?}"
    );
    assert!(!old.iter().any(|l| l.contains("/rotate-after-")));
    // Nothing lost: every request made is in one file or the other.
    assert_eq!(old.len() + new.len(), 5 + probes_before + 5);
}

#[test]
fn healthcheck_answers_for_a_running_server_only() {
    let dir = TempDir::new("health");
    let port = free_port();
    let config = config_file(&dir, port, "");
    let check = |extra: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("healthcheck")
            .args(extra)
            .output()
            .unwrap()
    };
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(1), "nothing listens yet");
    let _proc = spawn(&config, &[]);
    wait_accepting(port);
    let out = check(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("/api/status"));
    // A server that answers, but not 200, is not healthy.
    let url = format!("http://127.0.0.1:{port}/no-such-mount");
    let out = check(&["--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    // Something that accepts but never answers: bounded by the 5 s timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/status", silent.local_addr().unwrap());
    let started = Instant::now();
    let out = check(&["--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(8));
}
