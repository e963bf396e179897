//! Running floecast for real: the systemd unit (checked by `systemd-analyze verify`, and its
//! command run as an unprivileged user with the unit's one capability) and its readiness
//! protocol spoken to a notify socket this test binds, the logrotate config rotating
//! a live server's access and error logs through SIGHUP without losing a line, `floecast
//! healthcheck`, the Dockerfile's command and healthcheck on the config it copies, and the
//! three nodes of docker/compose.yaml run from its own commands and config files.

mod common;
mod interop_support;

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

/// One blocking HTTP/1.0 GET against 127.0.0.1:`port`; the status code (0 if none). Only
/// the head is read, so a stream answers at once.
fn get(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nUser-Agent: ops-test/1.0\r\n\r\n");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
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
        .env("RUST_LOG", "info")
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
        "StateDirectory=floecast\n",
        "RuntimeDirectory=floecast\n",
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

/// A free loopback port below 1024 (bound, then released), which only root or a holder of
/// CAP_NET_BIND_SERVICE may bind.
fn free_low_port() -> u16 {
    (600..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024")
}

/// What the unit runs, the way it runs it, outside systemd: its ExecStart, as an unprivileged
/// user holding only its AmbientCapabilities (also the bounding set, no new privileges), with
/// the shipped config moved to a port below 1024. It serves there and writes only where the
/// unit lets it (LogsDirectory: both logs; StateDirectory: a splitter's key file;
/// RuntimeDirectory: the pidfile); ExecReload reloads it and SIGTERM ends it. Without the
/// capability the same command cannot bind the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_command_runs_unprivileged_with_its_one_capability() {
    use interop_support::{TEST_USER, run, running_as_root, user_ids};
    if !have("setpriv") {
        return;
    }
    let Some((uid, gid)) = user_ids(TEST_USER).filter(|_| running_as_root()) else {
        skip(&format!(
            "needs root and the user {TEST_USER} to drop privileges to (unit_command_runs_unprivileged_with_its_one_capability)"
        ));
        return;
    };
    let unit =
        std::fs::read_to_string(Path::new(REPO).join("config/systemd/floecast.service")).unwrap();
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("the unit has no {key}"))
            .to_string()
    };
    let cap = value("AmbientCapabilities=");
    assert_eq!(cap, value("CapabilityBoundingSet="));
    let cap = cap
        .strip_prefix("CAP_")
        .expect("one capability")
        .to_lowercase();
    let dir = interop_support::TempDir::new("unit-sandbox");
    // /var/log/X, /var/lib/Y and /run/Z of LogsDirectory=X, StateDirectory=Y and
    // RuntimeDirectory=Z, owned by the service's user, here under the temp dir.
    let [logs, state, runtime] = [
        ("log", "LogsDirectory="),
        ("lib", "StateDirectory="),
        ("run", "RuntimeDirectory="),
    ]
    .map(|(under, key)| {
        let d = dir.join(under).join(value(key));
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
        d
    });
    let shipped = std::fs::read_to_string(Path::new(REPO).join("config/floecast.toml")).unwrap();
    // The config's examples of a key file and a pidfile lie in those directories.
    for example in [
        format!(
            "splitter-key-file = \"/var/lib/{}/",
            value("StateDirectory=")
        ),
        format!("#pidfile = \"/run/{}/", value("RuntimeDirectory=")),
    ] {
        assert!(
            shipped.contains(&example),
            "config/floecast.toml lacks {example}"
        );
    }
    let port = free_low_port();
    let team = free_tcp_udp_port();
    let mut t: toml::Table = shipped.parse().unwrap();
    let listen = t["listen"][0].as_table_mut().unwrap();
    listen.insert("port".into(), i64::from(port).into());
    listen.insert("bind-address".into(), "127.0.0.1".into());
    let path = |p: &Path| toml::Value::from(p.display().to_string());
    let mut logging = toml::Table::new();
    logging.insert("access-log".into(), path(&logs.join("access.log")));
    logging.insert("error-log".into(), path(&logs.join("error.log")));
    t.insert("logging".into(), logging.into());
    let mut paths = toml::Table::new();
    paths.insert("pidfile".into(), path(&runtime.join("floecast.pid")));
    t.insert("paths".into(), paths.into());
    let key = state.join("team.key");
    let mount: toml::Table = toml::from_str(&format!(
        "name = \"/team.ogg\"\np2psp = {{ role = \"splitter\", port = {team}, bind-address = \"127.0.0.1\", splitter-key-file = {:?} }}\n",
        key.display().to_string()
    ))
    .unwrap();
    t.insert("mount".into(), toml::Value::Array(vec![mount.into()]));
    let config = dir.join("floecast.toml");
    std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();

    let exec_start = value("ExecStart=");
    assert!(exec_start.starts_with("/usr/local/bin/floecast --config /etc/floecast/floecast.toml"));
    let command = |with_cap: bool| {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
        if with_cap {
            for set in ["--inh-caps", "--ambient-caps", "--bounding-set"] {
                c.arg(format!("{set}=-all,+{cap}"));
            }
        }
        c.arg("--no-new-privs").arg("--");
        for arg in exec_start.split_whitespace() {
            match arg {
                "/usr/local/bin/floecast" => c.arg(BIN),
                "/etc/floecast/floecast.toml" => c.arg(&config),
                other => c.arg(other),
            };
        }
        c.env_remove("RUST_LOG").env_remove("NOTIFY_SOCKET");
        c
    };

    // Without the capability: refused the port, and says so.
    let out = run(command(false), Duration::from_secs(10)).await;
    assert!(
        out.status.is_some_and(|s| !s.success()) && out.stderr_text().contains("Permission denied"),
        "{}",
        out.describe()
    );

    let mut server =
        interop_support::Proc::spawn("floecast", command(true), dir.join("output.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepts(port) {
        server.assert_running();
        assert!(Instant::now() < deadline, "nothing accepts on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(port, "/api/status"), 200);
    let pid = server.pid();
    let pidfile = std::fs::read_to_string(runtime.join("floecast.pid")).unwrap_or_default();
    assert_eq!(pidfile.trim(), pid.to_string());
    let meta = std::fs::metadata(&key).expect("the splitter's key file");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (uid, 0o600)
    );
    assert_eq!(
        wait_lines(&logs.join("access.log"), "GET /api/status", 1).len(),
        1
    );

    // ExecReload, as systemd runs it.
    let reload = value("ExecReload=").replace("$MAINPID", &pid.to_string());
    let mut words = reload.split_whitespace();
    let status = Command::new(words.next().unwrap())
        .args(words)
        .status()
        .unwrap();
    assert!(status.success());
    let errors = wait_lines(&logs.join("error.log"), "config reloaded", 1);
    assert!(
        errors.iter().any(|l| l.contains("listening on"))
            && errors.iter().any(|l| l.contains("config reloaded")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|l| l.contains("ERROR")),
        "{errors:#?}\n{}",
        server.log_text()
    );

    signal(pid, "TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
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

/// Requests `/rotate-<tag>-<i>` for i in 0..n, each read to its end; each leaves one
/// access-log line.
fn requests(port: u16, tag: &str, n: usize) {
    use std::io::{Read, Write};
    for i in 0..n {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /rotate-{tag}-{i} HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        assert_eq!(split_reply(&reply).0, 404);
    }
}

/// Wait (up to 10 s) until `path` holds `n` lines containing `what`.
fn wait_lines(path: &Path, what: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = lines_of(path);
        if lines.iter().filter(|l| l.contains(what)).count() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logrotate_rotates_both_logs_through_sighup() {
    if !have("logrotate") {
        return;
    }
    let dir = TempDir::new("logrotate");
    let log = dir.path("access.log");
    let error_log = dir.path("error.log");
    let pidfile = dir.path("floecast.pid");
    let port = free_port();
    let config = config_file(
        &dir,
        port,
        &format!(
            "[paths]\npidfile = {:?}\n[logging]\naccess-log = {:?}\nerror-log = {:?}\n",
            pidfile.display().to_string(),
            log.display().to_string(),
            error_log.display().to_string()
        ),
    );
    let good_config = std::fs::read_to_string(&config).unwrap();
    // The shipped config, with its paths moved into the temp dir (postrotate falls back
    // from `systemctl reload` to the pidfile, as it does on a host without the unit).
    let shipped =
        std::fs::read_to_string(Path::new(REPO).join("config/logrotate/floecast")).unwrap();
    assert!(shipped.contains("kill -HUP"), "postrotate must send HUP");
    // Its pidfile is the one config/floecast.toml suggests (the unit's RuntimeDirectory).
    let example = std::fs::read_to_string(Path::new(REPO).join("config/floecast.toml")).unwrap();
    assert!(example.contains("#pidfile = \"/run/floecast/floecast.pid\"\n"));
    assert!(shipped.contains("/run/floecast/floecast.pid"));
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

    let proc = spawn(&config, &[]);
    wait_accepting(port);
    requests(port, "before", 5);
    assert_eq!(
        wait_lines(&log, "/rotate-before-", 5).len(),
        5,
        "access log before rotation"
    );
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
    let new = wait_lines(&log, "/rotate-after-", 5);
    let old = lines_of(&rotated);
    assert!(
        new.iter().filter(|l| l.contains("/rotate-after-")).count() == 5,
        "new lines must go to the new file: {new:#?}\nrotated file: {old:#?}"
    );
    assert_eq!(
        old.iter().filter(|l| l.contains("/rotate-before-")).count(),
        5,
        "the old lines stay in the rotated file: {old:?}"
    );
    assert!(!old.iter().any(|l| l.contains("/rotate-after-")));
    // Nothing lost: every request made is in one file or the other.
    assert_eq!(old.len() + new.len(), 5 + probes_before + 5);

    // The error log was rotated with it: what the server said before the HUP (start-up, the
    // refused config) is in the rotated file, what it says next goes to a new one.
    let old_errors = std::fs::read_to_string(dir.path("error.log.1")).unwrap_or_default();
    assert!(
        old_errors.contains("listening on") && old_errors.contains("config reload failed"),
        "{old_errors}"
    );
    std::fs::write(&config, good_config).unwrap();
    signal(proc.0.id(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let new_errors = std::fs::read_to_string(&error_log).unwrap_or_default();
        if new_errors.contains("config reloaded") {
            assert!(!new_errors.contains("listening on"), "{new_errors}");
            assert!(!new_errors.contains('\x1b'), "no colours in a file");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new error.log line after the HUP: {new_errors:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// The JSON array after `key` on the Dockerfile's one line that starts with it (after
/// `CMD` for `HEALTHCHECK`, whose options end with a line continuation).
fn dockerfile_array(dockerfile: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("the Dockerfile has no {key}"));
    let mut text = lines[at][key.len()..].to_string();
    let mut next = at + 1;
    while text.trim_end().ends_with('\\') {
        text = format!("{} {}", text.trim_end().trim_end_matches('\\'), lines[next]);
        next += 1;
    }
    let array = match text.split_once(" CMD ") {
        Some((_, cmd)) if key == "HEALTHCHECK" => cmd,
        _ => &text,
    };
    serde_json::from_str(array.trim()).unwrap_or_else(|e| panic!("{key} {array}: {e}"))
}

/// docker/Dockerfile's final image, outside a container: its context keeps what the build
/// copies (and not target/ or tests/); the config it copies is the one ENTRYPOINT + CMD run
/// (config/floecast.toml, moved to a free loopback port here), whose port it exposes with the
/// P2PSP UDP port; its HEALTHCHECK command passes while that server runs and fails after.
#[test]
fn dockerfile_image_runs_and_checks_the_config_it_copies() {
    let dockerfile = std::fs::read_to_string(Path::new(REPO).join("docker/Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(Path::new(REPO).join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for must in ["target/", "tests/", ".git/"] {
        assert!(ignored.contains(&must), ".dockerignore lets {must} in");
    }
    // Every COPY from the context names something that exists and is not ignored.
    let mut copies = Vec::new();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words[0].starts_with("--from") {
            continue;
        }
        let (dest, sources) = words.split_last().unwrap();
        for source in sources {
            assert!(
                Path::new(REPO).join(source).exists(),
                "COPY {source}: missing"
            );
            let top = source.split('/').next().unwrap();
            assert!(
                !ignored
                    .iter()
                    .any(|i| i.trim_end_matches('/') == top || *i == *source),
                "COPY {source}: excluded by .dockerignore"
            );
            copies.push((source.to_string(), dest.to_string()));
        }
    }
    let entrypoint = dockerfile_array(&dockerfile, "ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/floecast"]);
    let cmd = dockerfile_array(&dockerfile, "CMD");
    let health = dockerfile_array(&dockerfile, "HEALTHCHECK");
    assert_eq!(health[0], "/usr/local/bin/floecast");
    // The config CMD names is the copied config/floecast.toml, and the healthcheck reads it.
    let in_image = cmd
        .iter()
        .find(|a| a.ends_with(".toml"))
        .expect("CMD names a config")
        .clone();
    let (source, _) = copies
        .iter()
        .find(|(_, dest)| *dest == in_image)
        .unwrap_or_else(|| panic!("{in_image} is not copied into the image"));
    assert_eq!(source, "config/floecast.toml");
    assert!(health.contains(&in_image));
    let shipped = std::fs::read_to_string(Path::new(REPO).join(source)).unwrap();
    let t: toml::Table = shipped.parse().unwrap();
    let port = t["listen"][0]["port"].as_integer().unwrap();
    let expose: Vec<&str> = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE")
        .split_whitespace()
        .collect();
    assert!(expose.contains(&port.to_string().as_str()), "{expose:?}");
    assert!(expose.contains(&"8001/udp"), "{expose:?}");

    let dir = TempDir::new("dockerfile");
    let local_port = free_port();
    let config = dir.path("floecast.toml");
    std::fs::write(&config, localise(&shipped, local_port, None, &[])).unwrap();
    let local = |args: &[String]| with_local_config(args, &in_image, &config);
    let healthcheck = || {
        Command::new(BIN)
            .args(&local(&health)[1..])
            .output()
            .unwrap()
    };
    let server = Proc(
        Command::new(BIN)
            .args(local(&cmd))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("NOTIFY_SOCKET")
            .spawn()
            .unwrap(),
    );
    wait_accepting(local_port);
    let out = healthcheck();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
    assert_eq!(
        healthcheck().status.code(),
        Some(1),
        "healthy without a server"
    );
}

/// One service of docker/compose.yaml: its `command:` and its healthcheck's command.
struct Service {
    command: Vec<String>,
    health: Vec<String>,
}

/// The `command:` and healthcheck `test:` (after "CMD") of `name` in compose.yaml. The file
/// keeps both as one-line JSON arrays, which YAML reads the same.
fn compose_service(compose: &str, name: &str) -> Service {
    let body: Vec<&str> = compose
        .lines()
        .skip_while(|l| *l != format!("  {name}:"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .collect();
    let array = |key: &str| -> Vec<String> {
        let line = body
            .iter()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{name} has no {key} line"));
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{name} {key} {e}"))
    };
    let mut health = array("test:");
    assert_eq!(health.remove(0), "CMD");
    Service {
        command: array("command:"),
        health,
    }
}

/// A compose config with its container addresses replaced by loopback ones: `hosts` maps a
/// service's (name, port) to the local port standing in for it.
fn localise(text: &str, listen: u16, team: Option<u16>, hosts: &[(&str, u16, u16)]) -> String {
    let mut t: toml::Table = text.parse().expect("compose config parses");
    let local = |host: &str, port: u16| {
        hosts
            .iter()
            .find(|(h, p, _)| *h == host && *p == port)
            .map(|(_, _, local)| *local)
            .unwrap_or_else(|| panic!("no stand-in for {host}:{port}"))
    };
    for l in t["listen"].as_array_mut().expect("[[listen]]") {
        l["port"] = toml::Value::Integer(listen.into());
        l.as_table_mut()
            .expect("table")
            .insert("bind-address".into(), "127.0.0.1".into());
    }
    for m in t
        .get_mut("mount")
        .and_then(|m| m.as_array_mut())
        .into_iter()
        .flatten()
    {
        let Some(p2psp) = m.get_mut("p2psp").and_then(|p| p.as_table_mut()) else {
            continue;
        };
        if let Some(team) = team.filter(|_| p2psp["role"].as_str() == Some("splitter")) {
            p2psp.insert("port".into(), toml::Value::Integer(team.into()));
            p2psp.insert("bind-address".into(), "127.0.0.1".into());
        }
        if let Some(splitter) = p2psp.get("splitter").and_then(|s| s.as_str()) {
            let (host, port) = splitter.rsplit_once(':').expect("host:port");
            let port = local(host, port.parse().expect("port"));
            p2psp.insert("splitter".into(), format!("127.0.0.1:{port}").into());
        }
    }
    for r in t
        .get_mut("relay")
        .and_then(|r| r.as_array_mut())
        .into_iter()
        .flatten()
    {
        let host = r["server"].as_str().expect("server").to_string();
        let port = local(&host, r["port"].as_integer().expect("port") as u16);
        r["server"] = "127.0.0.1".into();
        r["port"] = toml::Value::Integer(port.into());
    }
    toml::to_string(&t).expect("config serialises")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_tree_decodes_on_the_relay_node() {
    use interop_support::{Proc, TempDir, assert_decodes, ffmpeg, have_all};
    if !have_all("compose_tree_decodes_on_the_relay_node", &["ffmpeg"]) {
        return;
    }
    let docker = Path::new(REPO).join("docker");
    let compose = std::fs::read_to_string(docker.join("compose.yaml")).unwrap();
    let dir = TempDir::new("compose");
    let (origin, peer, relay) = (free_port(), free_port(), free_port());
    let team = free_tcp_udp_port();
    let hosts = [
        ("origin", 8001, team),
        ("peer", 8000, peer),
        ("origin", 8000, origin),
    ];
    let mut procs = Vec::new();
    let mut healths = Vec::new();
    for (name, port, team) in [
        ("origin", origin, Some(team)),
        ("peer", peer, None),
        ("relay", relay, None),
    ] {
        let service = compose_service(&compose, name);
        // The volume maps ./NAME.toml to /etc/floecast/NAME.toml: the same file, localised.
        let in_container = format!("/etc/floecast/{name}.toml");
        assert!(
            compose.contains(&format!("./{name}.toml:{in_container}:ro")),
            "{name}'s config volume"
        );
        let text = std::fs::read_to_string(docker.join(format!("{name}.toml"))).unwrap();
        let local = dir.join(&format!("{name}.toml"));
        std::fs::write(&local, localise(&text, port, team, &hosts)).unwrap();
        let args = |cmd: &[String]| with_local_config(cmd, &in_container, &local);
        assert!(service.command.contains(&in_container));
        let mut cmd = Command::new(BIN);
        cmd.args(args(&service.command)).env("RUST_LOG", "info");
        procs.push(Proc::spawn(name, cmd, dir.join(&format!("{name}.log"))));
        // The healthcheck program is the image's floecast: run ours in its place.
        let health = args(&service.health);
        assert_eq!(health[0], "/usr/local/bin/floecast");
        healths.push((name, health[1..].to_vec()));
        wait_accepting(port);
    }

    // The source of the README, with the password of origin.toml.
    let origin_conf: toml::Table = std::fs::read_to_string(docker.join("origin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let password = origin_conf["authentication"]["source-password"]
        .as_str()
        .unwrap();
    let url = format!("icecast://source:{password}@127.0.0.1:{origin}/live.ogg");
    procs.push(Proc::spawn(
        "ffmpeg source",
        ffmpeg(&[
            "-v",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=40",
            "-ac",
            "2",
            "-c:a",
            "libvorbis",
            "-content_type",
            "application/ogg",
            "-f",
            "ogg",
            &url,
        ]),
        dir.join("source.log"),
    ));

    // The relay node streams once the team and the relay have caught up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for p in procs.iter_mut() {
            p.assert_running();
        }
        let status = tokio::task::spawn_blocking(move || get(relay, "/live.ogg"))
            .await
            .unwrap();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay node does not serve /live.ogg; logs:\n{}",
            procs
                .iter()
                .map(|p| p.log_text())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_decodes(&format!("http://127.0.0.1:{relay}/live.ogg"), 3).await;
    for (name, health) in healths {
        let out = Command::new(BIN).args(&health).output().unwrap();
        assert!(
            out.status.success(),
            "{name}'s healthcheck: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `args` (a command of the Dockerfile or the compose file) with the config path it names
/// inside the image or container, `inside`, replaced by the local copy `local`.
fn with_local_config(args: &[String], inside: &str, local: &std::path::Path) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a == inside {
                local.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect()
}
