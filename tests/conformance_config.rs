//! Configuration conformance with real programs:
//! - icecast2 and floecast run on the same icecast.xml, with a `<mount type="default">` and
//!   specific mounts, and real clients (ffmpeg sources, curl listeners) see the same
//!   passwords, listener limits and stream names on both;
//! - every icecast.xml option floecast does not honour is reported, with its reason, by the
//!   loader and by `floecast import-icecast`;
//! - an intro file named `/intro.mp3` is read from the webroot and reaches a real listener
//!   first;
//! - `floecast import-icecast` converts Debian's shipped icecast.xml and a config with many
//!   options (two `<authentication>` blocks included) into TOML that loads.
//!
//! Tests needing a missing program print `SKIP: ...`.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use floecast::config::{Config, ConfigWarning, Severity, TlsMode};
use interop_support::{Icecast2, Proc, TempDir, ffmpeg, have_all, run};

const T: Duration = Duration::from_secs(20);

/// The mounts both servers run with: a default mount and two specific ones.
const MOUNTS_XML: &str = r#"
  <mount type="default">
    <password>defaultpw</password>
    <max-listeners>2</max-listeners>
    <stream-name>Default name</stream-name>
  </mount>
  <mount type="normal">
    <mount-name>/special.mp3</mount-name>
    <password>specialpw</password>
    <max-listeners>1</max-listeners>
    <stream-name>Special</stream-name>
  </mount>
  <mount type="normal">
    <mount-name>/named.mp3</mount-name>
    <stream-name>Named</stream-name>
  </mount>
"#;

/// An ffmpeg source of pink noise (MP3, 64 kbit/s, real time) logging in with `password`.
fn ffmpeg_mp3_source(addr: SocketAddr, mount: &str, password: &str) -> Command {
    let url = format!("icecast://source:{password}@{addr}{mount}");
    ffmpeg(&[
        "-v",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:sample_rate=44100:duration=60",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "64k",
        "-content_type",
        "audio/mpeg",
        "-ice_name",
        "Name from the source",
        "-f",
        "mp3",
        &url,
    ])
}

/// The `<listeners>` of `mount` in `/admin/stats` (icecast2's and floecast's share the XML
/// shape); `None` while the mount is not there.
async fn stats_listeners(addr: SocketAddr, mount: &str) -> Option<u64> {
    let r = exchange(
        addr,
        format!("GET /admin/stats HTTP/1.0\r\n{ADMIN}\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    let text = String::from_utf8_lossy(&r);
    let src = text.split(&format!("<source mount=\"{mount}\">")).nth(1)?;
    let src = src.split("</source>").next()?;
    src.split("<listeners>")
        .nth(1)?
        .split('<')
        .next()?
        .parse()
        .ok()
}

async fn wait_stats_listeners(who: &str, addr: SocketAddr, mount: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let got = stats_listeners(addr, mount).await;
        if got == Some(n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{who}: {got:?} listeners on {mount}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a real client sees of the mount settings on one server.
#[derive(Debug, PartialEq)]
struct Seen {
    /// (mount, password, accepted) for source logins.
    logins: Vec<(&'static str, &'static str, bool)>,
    /// (mount, HTTP status of the listener one past max-listeners).
    over_limit: Vec<(&'static str, String)>,
    /// (mount, `server_name` in /status-json.xsl).
    names: Vec<(&'static str, String)>,
}

/// Drive one server with ffmpeg sources and curl listeners; `dir` holds the logs.
async fn observe(who: &str, addr: SocketAddr, dir: &TempDir) -> Seen {
    let mut logins = Vec::new();
    // Wrong passwords first: the specific mount's own password beats the default mount's, and
    // a mount without its own gets the default mount's, not the global one.
    for (mount, password) in [("/special.mp3", "defaultpw"), ("/named.mp3", "hackme")] {
        // Refused: ffmpeg exits saying 401. Let in: the mount goes live. (Not "still running
        // after 5 s": on a busy CI machine ffmpeg may take longer than that to start.)
        let log = dir.join(&format!("{who}-wrong{}.log", mount.replace('/', "-")));
        let mut source = Proc::spawn("ffmpeg", ffmpeg_mp3_source(addr, mount, password), log);
        let deadline = tokio::time::Instant::now() + T;
        let let_in = loop {
            if source.exited().is_some() {
                break !source.log_text().contains("401");
            }
            if stats_listeners(addr, mount).await.is_some() {
                break true;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{who}: {mount} with {password} neither refused nor live: {}",
                source.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        drop(source);
        logins.push((mount, password, let_in));
    }
    let mut sources = Vec::new();
    for (mount, password) in [
        ("/special.mp3", "specialpw"),
        ("/named.mp3", "defaultpw"),
        ("/other.mp3", "defaultpw"),
    ] {
        let log = dir.join(&format!("{who}-source{}.log", mount.replace('/', "-")));
        sources.push((
            mount,
            password,
            Proc::spawn("ffmpeg", ffmpeg_mp3_source(addr, mount, password), log),
        ));
    }
    for (mount, password, source) in &mut sources {
        let deadline = tokio::time::Instant::now() + T;
        let live = loop {
            if stats_listeners(addr, mount).await.is_some() {
                break true;
            }
            if source.exited().is_some() || tokio::time::Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        logins.push((mount, password, live));
        assert!(live, "{who}: {mount} not live: {}", source.log_text());
    }

    // Listeners up to max-listeners stay connected; one more is refused.
    let mut over_limit = Vec::new();
    let mut listeners = Vec::new();
    for (mount, max) in [("/special.mp3", 1), ("/named.mp3", 2), ("/other.mp3", 2)] {
        let url = format!("http://{addr}{mount}");
        for i in 0..max {
            let mut curl = Command::new("curl");
            curl.args(["-s", "-o", "/dev/null", "--max-time", "60", &url]);
            let log = dir.join(&format!("{who}-curl{}-{i}.log", mount.replace('/', "-")));
            listeners.push(Proc::spawn("curl", curl, log));
            wait_stats_listeners(who, addr, mount, i + 1).await;
        }
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(&url);
        let out = run(curl, T).await;
        over_limit.push((mount, out.stdout_text()));
    }

    let mut names = Vec::new();
    let json = exchange(
        addr,
        b"GET /status-json.xsl HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let (_, _, body) = split_reply(&json);
    let doc: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{who}: status-json: {e}: {body}"));
    let sources_json = match &doc["icestats"]["source"] {
        serde_json::Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    for mount in ["/special.mp3", "/named.mp3", "/other.mp3"] {
        let name = sources_json
            .iter()
            .find(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)))
            .and_then(|s| s["server_name"].as_str())
            .unwrap_or("(missing)")
            .to_string();
        names.push((mount, name));
    }
    drop(listeners);
    drop(sources);
    Seen {
        logins,
        over_limit,
        names,
    }
}

/// Break 6: `<mount type="default">` fills in what specific mounts leave out, and the specific
/// mounts' own password, max-listeners and stream-name apply, on icecast2 and on floecast fed
/// the same icecast.xml.
#[tokio::test]
async fn default_and_specific_mounts_behave_as_on_icecast2() {
    let test = "default_and_specific_mounts_behave_as_on_icecast2";
    if !have_all(test, &["curl"]) {
        return;
    }
    let Some(ice) = Icecast2::start(test, MOUNTS_XML).await else {
        return;
    };
    let loaded = Config::load_with_warnings(&ice.config_file())
        .unwrap_or_else(|e| panic!("floecast cannot load icecast2's config: {e}"));
    let mut config = loaded.config;
    let base = test_config();
    config.listen = base.listen;
    config.tuning = base.tuning;
    // icecast2's own log directory stays icecast2's (the error log is the binary's, below).
    config.logging.access_log = None;
    config.logging.error_log = None;
    let floe = start(config).await;

    let dir = TempDir::new("conformance-config");
    let (from_icecast, from_floecast) = tokio::join!(
        observe("icecast2", ice.addr, &dir),
        observe("floecast", floe.addr, &dir)
    );
    let expected = Seen {
        logins: vec![
            ("/special.mp3", "defaultpw", false),
            ("/named.mp3", "hackme", false),
            ("/special.mp3", "specialpw", true),
            ("/named.mp3", "defaultpw", true),
            ("/other.mp3", "defaultpw", true),
        ],
        over_limit: vec![
            ("/special.mp3", "403".into()),
            ("/named.mp3", "403".into()),
            ("/other.mp3", "403".into()),
        ],
        names: vec![
            ("/special.mp3", "Special".into()),
            ("/named.mp3", "Named".into()),
            ("/other.mp3", "Default name".into()),
        ],
    };
    assert_eq!(
        from_icecast,
        expected,
        "icecast2 itself behaves otherwise; {}",
        ice.error_log()
    );
    assert_eq!(from_floecast, expected, "floecast differs from icecast2");
}

/// `<logging>`: icecast2 and the floecast binary run on the same icecast.xml, floecast's copy
/// with only its `<port>` and `<logdir>` changed (so the two never share a file). Each writes
/// its `<errorlog>` under its `<logdir>` at `<loglevel>4`, debug included; floecast's start-up
/// warnings still go to standard error first, naming the file its log goes to from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_log_follows_logdir_and_loglevel_as_on_icecast2() {
    let test = "error_log_follows_logdir_and_loglevel_as_on_icecast2";
    let Some(ice) = Icecast2::start(test, "").await else {
        return;
    };
    let xml = std::fs::read_to_string(ice.config_file()).expect("icecast2's icecast.xml");
    let ice_logs = ice.config_file().with_file_name("log");
    let dir = TempDir::new("errorlog");
    let port = free_port();
    let swap = |xml: String, tag: &str, from: String, to: String| {
        let (from, to) = (
            format!("<{tag}>{from}</{tag}>"),
            format!("<{tag}>{to}</{tag}>"),
        );
        assert!(xml.contains(&from), "no {from} in {xml}");
        xml.replace(&from, &to)
    };
    let ours = swap(xml, "port", ice.addr.port().to_string(), port.to_string());
    let ours = swap(
        ours,
        "logdir",
        ice_logs.display().to_string(),
        dir.path().display().to_string(),
    );
    assert!(ours.contains("<errorlog>error.log</errorlog><loglevel>4</loglevel>"));
    let file = dir.join("icecast.xml");
    std::fs::write(&file, ours).unwrap();
    let mut floecast = {
        let mut c = floecast_bin();
        c.arg("--config").arg(&file);
        Proc::spawn("floecast", c, dir.join("stderr.log"))
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_for("floecast's error log", T, || {
        std::fs::read_to_string(dir.join("error.log")).is_ok_and(|l| l.contains("listening on"))
    })
    .await;
    // The same request on both: a mount that is not there.
    for server in [ice.addr, addr] {
        let (status, ..) =
            split_reply(&exchange(server, b"GET /nothing.mp3 HTTP/1.0\r\n\r\n", T).await);
        assert_eq!(status, 404, "{server}");
    }
    // A client that leaves without a request: a debug line.
    drop(connect(addr).await);
    wait_for("a debug line", T, || {
        std::fs::read_to_string(dir.join("error.log")).is_ok_and(|l| l.contains(" DEBUG "))
    })
    .await;
    floecast.assert_running();
    let theirs = std::fs::read_to_string(ice_logs.join("error.log")).unwrap_or_default();
    assert!(
        theirs.contains("server started") && theirs.contains("DBUG"),
        "icecast2's error log:\n{theirs}"
    );
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap();
    assert!(!log.contains('\x1b'), "colour codes in the file:\n{log}");
    let stderr = floecast.log_text();
    assert!(
        stderr.contains("icecast2's own error log") && !stderr.contains("listening on"),
        "floecast's standard error:\n{stderr}"
    );
}

/// An icecast.xml using options floecast does not honour, each with the warning it must draw
/// (option, words of the reason, severity).
const UNSUPPORTED_XML: &str = r#"<icecast>
  <icelogin>1</icelogin>
  <mime-types>/etc/mime.types</mime-types>
  <master-ssl-port>8443</master-ssl-port>
  <bogus-option>1</bogus-option>
  <shoutcast-mount>/sc.mp3</shoutcast-mount>
  <directory><yp-url>http://dir.xiph.org/cgi-bin/yp-cgi</yp-url></directory>
  <limits><client-timeout>30</client-timeout><threadpool>5</threadpool><sources>4</sources></limits>
  <authentication><source-password mount="/x">pw</source-password><funny>1</funny></authentication>
  <listen-socket><port>8000</port><so-sndbuf>65536</so-sndbuf><bind-to>eth0</bind-to></listen-socket>
  <listen-socket><port>8443</port><ssl>1</ssl></listen-socket>
  <http-headers><header name="X-A" value="1"/><header name="X-B" value="2" type="cors"/></http-headers>
  <mount type="normal">
    <mount-name>/m.mp3</mount-name>
    <max-listener-duration>3600</max-listener-duration>
    <no-mount>1</no-mount>
    <cluster-password>c</cluster-password>
    <frobnicate>1</frobnicate>
    <authentication type="url">
      <option name="listener_add" value="https://auth.example/add"/>
      <option name="mount_add" value="http://auth.example/mount"/>
    </authentication>
  </mount>
  <relay><server>127.0.0.1</server><port>9000</port><mount>/r</mount><retry>5</retry></relay>
  <paths><basedir>/usr/share/icecast2</basedir><adminroot>/a</adminroot>
    <alias source="/" destination="/status.xsl"/><deny-ip>/etc/deny</deny-ip><allow-ip>/etc/allow</allow-ip>
    <ssl-certificate>/etc/cert.pem</ssl-certificate><ssl-allowed-ciphers>HIGH</ssl-allowed-ciphers></paths>
  <logging><playlistlog>playlist.log</playlistlog>
    <logsize>10000</logsize><logarchive>1</logarchive></logging>
  <security><chroot>0</chroot></security>
</icecast>
"#;

const EXPECTED_WARNINGS: &[(&str, &str, Severity)] = &[
    ("icelogin", "always accepted", Severity::Notice),
    ("mime-types", "built-in", Severity::Notice),
    ("bogus-option", "unknown", Severity::Notice),
    ("shoutcast-mount", "shoutcast-compat", Severity::Notice),
    ("directory", "YP", Severity::Notice),
    ("limits.client-timeout", "never uses it", Severity::Notice),
    ("limits.threadpool", "does not use it", Severity::Notice),
    (
        "authentication.source-password",
        "<mount><password>",
        Severity::Notice,
    ),
    ("authentication.funny", "unknown", Severity::Notice),
    ("listen-socket.so-sndbuf", "autotuning", Severity::Notice),
    ("listen-socket.bind-to", "unknown", Severity::Notice),
    (
        "http-headers.header",
        "unknown type \"cors\"",
        Severity::Notice,
    ),
    ("mount.no-mount", "CAN connect", Severity::Danger),
    (
        "mount.cluster-password",
        "not an icecast 2.4 option",
        Severity::Notice,
    ),
    ("mount.frobnicate", "unknown", Severity::Notice),
    (
        "mount.authentication.option name=\"mount_add\"",
        "not supported",
        Severity::Notice,
    ),
    ("relay.retry", "unknown", Severity::Notice),
    ("paths.basedir", "chroot", Severity::Notice),
    ("paths.adminroot", "built in", Severity::Notice),
    ("paths.alias", "aliases", Severity::Notice),
    (
        "paths.ssl-allowed-ciphers",
        "cipher suites",
        Severity::Notice,
    ),
    ("logging.playlistlog", "not supported", Severity::Notice),
    ("logging.logsize", "logrotate", Severity::Notice),
    ("logging.logarchive", "logrotate", Severity::Notice),
    ("security", "user", Severity::Notice),
];

fn floecast_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floecast"))
}

fn find_warning<'a>(warnings: &'a [ConfigWarning], option: &str) -> Option<&'a ConfigWarning> {
    warnings.iter().find(|w| w.option == option)
}

/// Break 7 (config side): every option floecast does not honour is reported with its reason,
/// as data by the loader (for `serve` and `check-config`) and on stderr by `import-icecast`.
#[tokio::test]
async fn every_unsupported_icecast_option_is_reported() {
    let dir = TempDir::new("unsupported-xml");
    let file = dir.join("icecast.xml");
    std::fs::write(&file, UNSUPPORTED_XML).expect("write icecast.xml");
    let loaded = Config::load_with_warnings(&file).unwrap_or_else(|e| panic!("{e}"));
    // Both sockets open, the <ssl> one for TLS only (with the <ssl-certificate>), which draw
    // no warning.
    let ports: Vec<(u16, TlsMode)> = loaded
        .config
        .listen
        .iter()
        .map(|l| (l.port, l.tls))
        .collect();
    assert_eq!(ports, [(8000, TlsMode::Auto), (8443, TlsMode::Required)]);
    assert_eq!(loaded.config.tls.len(), 1);
    for supported in ["listen-socket.ssl", "paths.ssl-certificate"] {
        assert!(
            find_warning(&loaded.warnings, supported).is_none(),
            "{supported} is supported"
        );
    }
    let mut missing = Vec::new();
    for &(option, reason, severity) in EXPECTED_WARNINGS {
        match find_warning(&loaded.warnings, option) {
            Some(w) if w.message.contains(reason) && w.severity == severity && w.line.is_some() => {
            }
            other => missing.push(format!("{option} ({reason}, {severity:?}): got {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "warnings missing or wrong:\n{}\nall warnings:\n{:#?}",
        missing.join("\n"),
        loaded.warnings
    );

    // The user-facing programs: import-icecast names every one on stderr and as a comment;
    // check-config accepts the file.
    let out = run(
        {
            let mut c = floecast_bin();
            c.arg("import-icecast").arg(&file);
            c
        },
        T,
    )
    .await;
    assert!(out.success(), "import-icecast: {}", out.describe());
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    for &(option, reason, _) in EXPECTED_WARNINGS {
        let needle = format!("<{option}>");
        assert!(
            stderr.contains(&needle) && stdout.contains(&needle),
            "import-icecast does not report {option} ({reason}): {}",
            out.describe()
        );
    }
    let out = run(
        {
            let mut c = floecast_bin();
            c.arg("--config").arg(&file).arg("check-config");
            c
        },
        T,
    )
    .await;
    assert!(out.success(), "check-config: {}", out.describe());
}

/// Break 8: `intro = "/intro.mp3"` is read from the webroot, as in icecast2, and a real
/// listener receives it before the live stream, both decodable.
#[tokio::test]
async fn intro_is_read_from_the_webroot() {
    let test = "intro_is_read_from_the_webroot";
    if !have_all(test, &["ffmpeg", "curl"]) {
        return;
    }
    let dir = TempDir::new("intro");
    let webroot = dir.join("web");
    std::fs::create_dir_all(&webroot).expect("webroot");
    let intro_file = webroot.join("intro.mp3");
    let made = run(
        ffmpeg(&[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=color=pink:sample_rate=44100:duration=2",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-y",
            intro_file.to_str().expect("utf-8 path"),
        ]),
        T,
    )
    .await;
    assert!(made.success(), "intro: {}", made.describe());
    let intro = std::fs::read(&intro_file).expect("intro bytes");

    let toml = format!(
        "[paths]\nwebroot = {:?}\n[[mount]]\nname = \"/show.mp3\"\nintro = \"/intro.mp3\"\n",
        webroot.display().to_string()
    );
    let mut config = Config::from_toml_str(&toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    let base = test_config();
    config.listen = base.listen;
    config.tuning = base.tuning;
    let srv = start(config).await;
    let mut source = Proc::spawn(
        "ffmpeg source",
        ffmpeg_mp3_source(srv.addr, "/show.mp3", "hackme"),
        dir.join("source.log"),
    );
    interop_support::wait_live(&srv.app.server, "/show.mp3", &mut source, T).await;

    let got_file = dir.join("listened.mp3");
    let mut curl = Command::new("curl");
    curl.args(["-s", "--max-time", "4", "-o"])
        .arg(&got_file)
        .arg(format!("http://{}/show.mp3", srv.addr));
    let _ = run(curl, T).await;
    let got = std::fs::read(&got_file).unwrap_or_default();
    assert!(
        got.len() > intro.len() + 4096,
        "the listener got {} bytes, the intro alone is {}",
        got.len(),
        intro.len()
    );
    assert_bytes(
        &got[..intro.len()],
        &intro,
        "the first bytes a listener gets",
    );
    // ffmpeg decodes the intro and then the live stream that follows it.
    let decoded = run(
        ffmpeg(&[
            "-v",
            "error",
            "-i",
            got_file.to_str().expect("utf-8 path"),
            "-f",
            "null",
            "-",
        ]),
        T,
    )
    .await;
    assert!(decoded.success(), "decode: {}", decoded.describe());
}

/// Break 14 (and 13): `import-icecast` converts Debian's shipped icecast.xml and a config with
/// many options, including a mount with two `<authentication>` blocks, into TOML that loads;
/// icecast2's access-log path draws a warning in the TOML and on stderr.
#[tokio::test]
async fn import_icecast_converts_real_configs() {
    let debian = Path::new("/etc/icecast2/icecast.xml");
    let mut files = vec![];
    if debian.exists() {
        files.push(debian.to_path_buf());
    } else {
        eprintln!(
            "SKIP: {} not installed (the Debian part of this test)",
            debian.display()
        );
    }
    let dir = TempDir::new("import");
    let rich = dir.join("rich.xml");
    std::fs::write(
        &rich,
        r#"<icecast>
  <hostname>radio.example.org</hostname>
  <limits><clients>500</clients><sources>5</sources><burst-on-connect>1</burst-on-connect></limits>
  <authentication><source-password>s3cret</source-password><admin-user>boss</admin-user>
    <admin-password>adm1n</admin-password></authentication>
  <listen-socket><port>8000</port></listen-socket>
  <listen-socket><port>8001</port><shoutcast-compat>1</shoutcast-compat><shoutcast-mount>/sc.mp3</shoutcast-mount></listen-socket>
  <mount type="default"><max-listeners>100</max-listeners><genre>various</genre></mount>
  <mount type="normal">
    <mount-name>/members.mp3</mount-name>
    <stream-name>Members</stream-name><stream-name>Members only</stream-name>
    <authentication type="htpasswd"><option name="filename" value="/etc/icecast2/old.htpasswd"/></authentication>
    <authentication type="htpasswd"><option name="filename" value="/etc/icecast2/members.htpasswd"/>
      <option name="allow_duplicate_users" value="0"/></authentication>
    <http-headers><header name="X-Members" value="1"/></http-headers>
  </mount>
  <mount type="normal"><mount-name>/live/*</mount-name><password>livepw</password><queue-size>0</queue-size></mount>
  <relay><server>upstream.example.org</server><port>8000</port><mount>/a.mp3</mount></relay>
  <paths><logdir>/var/log/icecast2</logdir><webroot>/usr/share/icecast2/web</webroot></paths>
  <logging><accesslog>access.log</accesslog><loglevel>2</loglevel></logging>
</icecast>
"#,
    )
    .expect("write rich.xml");
    files.push(rich.clone());

    for file in &files {
        let out = run(
            {
                let mut c = floecast_bin();
                c.arg("import-icecast").arg(file);
                c
            },
            T,
        )
        .await;
        assert!(
            out.success(),
            "import-icecast {}: {}",
            file.display(),
            out.describe()
        );
        let toml = out.stdout_text();
        let config = Config::from_toml_str(&toml, "imported.toml").unwrap_or_else(|e| {
            panic!(
                "{}: the printed TOML does not load: {e}\n{toml}",
                file.display()
            )
        });
        // The access log is icecast2's: said in the TOML and on stderr.
        assert!(
            config
                .logging
                .access_log
                .as_deref()
                .is_some_and(|p| p.starts_with("/var/log/icecast2")),
            "{toml}"
        );
        for (what, text) in [("TOML", &toml), ("stderr", &out.stderr_text())] {
            assert!(
                text.contains("icecast2's own access log") && text.contains("logrotate"),
                "{}: no access-log warning in the {what}: {}",
                file.display(),
                out.describe()
            );
        }
        // check-config accepts the original file too.
        let checked = run(
            {
                let mut c = floecast_bin();
                c.arg("--config").arg(file).arg("check-config");
                c
            },
            T,
        )
        .await;
        assert!(
            checked.success(),
            "check-config {}: {}",
            file.display(),
            checked.describe()
        );
    }

    let loaded = Config::load_with_warnings(&rich).unwrap_or_else(|e| panic!("{e}"));
    let config = loaded.config;
    let members = config.mount("/members.mp3").expect("/members.mp3");
    // icecast2 uses the last <authentication> of a mount; the first is reported.
    assert_eq!(
        members.authentication,
        Some(floecast::config::ListenerAuth::htpasswd(
            "/etc/icecast2/members.htpasswd",
            false
        ))
    );
    assert_eq!(members.stream_name.as_deref(), Some("Members only"));
    assert_eq!(members.max_listeners, Some(100));
    assert_eq!(members.genre.as_deref(), Some("various"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.option == "mount.authentication" && w.message.contains("uses the last")),
        "{:#?}",
        loaded.warnings
    );
    // <queue-size>0 is icecast2's "not set": the global queue applies.
    let live = config.mount("/live/a").expect("/live/a");
    assert_eq!(
        (live.queue_size, live.password.as_deref()),
        (None, Some("livepw"))
    );
    assert_eq!(config.listen.len(), 1);
    assert_eq!(config.listen[0].shoutcast_mount.as_deref(), Some("/sc.mp3"));
}
