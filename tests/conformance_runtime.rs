//! The running server as a user meets it (issue 9): the real `floecast` binary's start-up
//! (icecast.xml warnings, a banner whose commands work when pasted, `--port`, no colour codes
//! in a log file), `floecast peer` as only a peer, the `<sources>` limit with relays, VLC's
//! fast reconnects, master relay-all through an upstream restart, and the small things seen
//! in the same runs (CPU seconds, libshout's challenge, access-log lines, `/status.xsl`).
//! Real programs throughout: ffmpeg, VLC, libshout's `shout`, curl, icecast2, chromium.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use floecast::config::{MasterConfig, MountConfig, P2pspConfig, RelayTiming, SplitterSettings};
use interop_support::{
    Icecast2, MP3_ARGS, Proc, TempDir, VlcRunner, assert_decodes, ffmpeg, ffmpeg_decode,
    ffmpeg_source_live, have_all, run, wait_live,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_floecast");
const T: Duration = Duration::from_secs(20);

/// Pink noise (the bitrate of real content, unlike a sine) encoded with `codec_args`.
async fn make_pink(path: &Path, seconds: u32, codec_args: &[&str]) {
    let src = format!("anoisesrc=color=pink:sample_rate=44100:duration={seconds}");
    let mut args = vec!["-v", "error", "-f", "lavfi", "-i", &src, "-ac", "2"];
    args.extend_from_slice(codec_args);
    let p = path.to_str().expect("utf-8 path");
    args.extend_from_slice(&["-y", p]);
    let out = run(ffmpeg(&args), Duration::from_secs(60)).await;
    assert!(
        out.success(),
        "ffmpeg could not make {p}: {}",
        out.describe()
    );
}

/// The floecast binary with `args`, stdout and stderr in `tmp/<name>.log` (a file, as under
/// systemd or `> log 2>&1`).
fn floecast(tmp: &TempDir, name: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    Proc::spawn(name, cmd, tmp.join(&format!("{name}.log")))
}

/// Wait until something accepts TCP connections on `addr`; panics with the log of `proc` if
/// it exits first.
async fn wait_port(addr: SocketAddr, proc: &mut Proc) {
    let deadline = Instant::now() + T;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        proc.assert_running();
        assert!(
            Instant::now() < deadline,
            "nothing on {addr}: {}",
            proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `proc`'s output contains `needle`.
async fn wait_output(proc: &mut Proc, needle: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let text = proc.log_text();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the output:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `name` (with its labels, as printed) in a Prometheus text page.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// curl with `args`, run to completion.
async fn curl(args: &[&str]) -> interop_support::Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10"]).args(args);
    run(c, Duration::from_secs(15)).await
}

// ---- 7 and 13: start-up output ---------------------------------------------------------

/// Every warning `import-icecast` lists for an icecast.xml is a WARN line when the server
/// starts on that file and in `check-config`'s output; a log that goes to a file has no
/// colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast_xml_warnings_show_at_start_up_and_in_check_config() {
    let tmp = TempDir::new("xml-warnings");
    let port = free_port();
    let xml = format!(
        r#"<icecast>
  <limits><sources>4</sources></limits>
  <authentication><source-password>pw-source</source-password><relay-password>pw-relay</relay-password>
    <admin-user>admin</admin-user><admin-password>pw-admin</admin-password></authentication>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths><ssl-allowed-ciphers>HIGH:!aNULL</ssl-allowed-ciphers></paths>
  <directory><yp-url>http://dir.xiph.org/cgi-bin/yp-cgi</yp-url></directory>
  <mount><mount-name>/members</mount-name>
    <authentication type="command"><option name="command" value="/usr/local/bin/auth"/></authentication>
  </mount>
</icecast>
"#
    );
    let file = tmp.join("icecast.xml");
    std::fs::write(&file, xml).unwrap();
    let file = file.to_str().unwrap();

    let import = run(
        {
            let mut c = Command::new(BIN);
            c.args(["import-icecast", file]);
            c
        },
        T,
    )
    .await;
    assert!(import.success(), "{}", import.describe());
    let warnings: Vec<String> = import
        .stderr_text()
        .lines()
        .filter_map(|l| l.strip_prefix("floecast: ").map(str::to_string))
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("THE MOUNT IS OPEN"))
            && warnings.iter().any(|w| w.contains("ssl")),
        "import-icecast lists: {warnings:?}"
    );

    let check = run(
        {
            let mut c = Command::new(BIN);
            c.args(["--config", file, "check-config"]);
            c
        },
        T,
    )
    .await;
    assert!(check.success(), "{}", check.describe());
    let out = format!("{}{}", check.stdout_text(), check.stderr_text());
    for w in &warnings {
        assert!(out.contains(w), "check-config does not show {w:?}:\n{out}");
    }
    assert!(
        check
            .stdout_text()
            .contains(&format!("with the {} warnings above", warnings.len())),
        "{out}"
    );

    let mut server = floecast(&tmp, "serve", &["--config", file]);
    wait_port(([127, 0, 0, 1], port).into(), &mut server).await;
    let log = wait_output(&mut server, "listening on").await;
    for w in &warnings {
        assert!(
            log.lines()
                .any(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && l.contains(w.as_str())),
            "no WARN/ERROR line for {w:?} at start-up:\n{log}"
        );
    }
    assert!(
        !log.contains('\x1b'),
        "colour codes in a log file:\n{log:?}"
    );
}

/// With no config file and `--port`, the banner's source command and listen URL work as
/// printed (with a song.mp3 in the current directory), and it shows no placeholder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banner_commands_work_when_pasted_and_port_flag_moves_the_server() {
    if !have_all("banner_commands_work_when_pasted", &["ffmpeg", "sh"]) {
        return;
    }
    let tmp = TempDir::new("banner");
    make_pink(
        &tmp.join("song.mp3"),
        8,
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    )
    .await;
    let port = free_port();
    let mut server = floecast(&tmp, "serve", &["--port", &port.to_string()]);
    wait_port(([127, 0, 0, 1], port).into(), &mut server).await;
    let banner = wait_output(&mut server, "Admin:").await;
    assert!(
        !banner.contains('…') && !banner.contains("source:…"),
        "placeholder in the banner:\n{banner}"
    );
    let push = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ffmpeg "))
        .unwrap_or_else(|| panic!("no ffmpeg command in the banner:\n{banner}"))
        .to_string();
    assert!(
        push.ends_with(&format!("icecast://source:hackme@localhost:{port}/live")),
        "{push}"
    );
    let listen = format!("http://localhost:{port}/live");
    assert!(banner.contains(&listen), "{banner}");

    let mut sh = Command::new("sh");
    sh.args(["-c", &push]).current_dir(tmp.path());
    let mut pusher = Proc::spawn("the banner's ffmpeg command", sh, tmp.join("push.log"));
    let deadline = Instant::now() + T;
    loop {
        let out = ffmpeg_decode(&listen, 2).await;
        if out.success() && out.stderr.is_empty() {
            break;
        }
        pusher.assert_running();
        assert!(
            Instant::now() < deadline,
            "the banner's listen URL does not play: {}",
            out.describe()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = pusher.wait_exit(T).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the banner's command failed: {}",
        pusher.log_text()
    );
}

/// On a terminal the banner gives, for each configured mount, a command with that mount's
/// own credentials (special characters encoded and quoted) and a listen URL; both work.
/// Globs give no line of their own. Log colours are on there (and off in a file, above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banner_on_a_terminal_gives_working_commands_for_configured_mounts() {
    let test = "banner_on_a_terminal";
    if !have_all(test, &["ffmpeg", "sh", "script", "timeout", "pgrep"]) {
        return;
    }
    let tmp = TempDir::new("banner-tty");
    make_pink(
        &tmp.join("song.mp3"),
        8,
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    )
    .await;
    make_pink(&tmp.join("song.ogg"), 8, &["-c:a", "libvorbis"]).await;
    let port = free_port();
    let config = tmp.join("floecast.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[listen]]
port = {port}
bind-address = "127.0.0.1"

[authentication]
source-password = "p@ss w0rd"
admin-password = "adm!n"
relay-password = "r3lay"

[[mount]]
name = "/radio.ogg"
password = "o'k:1"

[[mount]]
name = "/dj/*"

[[mount]]
name = "/talk.mp3"
"#
        ),
    )
    .unwrap();
    // `script` gives the server a terminal; `timeout` bounds it even if this test dies.
    let inner = format!("timeout 60 {BIN} --config {}", config.display());
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"]);
    let mut server = Proc::spawn("floecast on a terminal", cmd, tmp.join("tty.log"));
    let _stop = StopChild(server.pid());
    wait_port(([127, 0, 0, 1], port).into(), &mut server).await;
    let banner = wait_output(&mut server, "Admin:").await;
    assert!(
        banner.contains("\x1b["),
        "no log colours on a terminal:\n{banner}"
    );
    assert!(!banner.contains("/dj/"), "a glob got a line:\n{banner}");
    assert!(banner.contains("password \"adm!n\""), "{banner}");
    let commands: Vec<String> = banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ffmpeg "))
        .map(str::to_string)
        .collect();
    assert_eq!(commands.len(), 2, "{banner}");
    let mut pushers = Vec::new();
    for (i, push) in commands.iter().enumerate() {
        let mut sh = Command::new("sh");
        sh.args(["-c", push]).current_dir(tmp.path());
        pushers.push(Proc::spawn(
            "a banner command",
            sh,
            tmp.join(&format!("push{i}.log")),
        ));
    }
    for mount in ["/radio.ogg", "/talk.mp3"] {
        let url = format!("http://127.0.0.1:{port}{mount}");
        assert!(banner.contains(&url), "no listen URL {url}:\n{banner}");
        let deadline = Instant::now() + T;
        loop {
            let out = ffmpeg_decode(&url, 1).await;
            if out.success() && out.stderr.is_empty() {
                break;
            }
            for p in &mut pushers {
                p.assert_running();
            }
            assert!(
                Instant::now() < deadline,
                "{url} does not play: {}",
                out.describe()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Ends the grandchild `timeout` (and so the server under it) of a `script` process.
struct StopChild(u32);

impl Drop for StopChild {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("pgrep")
            .args(["-P", &self.0.to_string()])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-TERM", pid]).status();
            }
        }
    }
}

// ---- 12: floecast peer ------------------------------------------------------------------

/// `floecast peer` with `--bind` and `--udp-port`: its own banner (the /stream URL, the
/// P2PSP socket), joins from that socket, plays the team's stream, and refuses a source
/// with the sample password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floecast_peer_is_only_a_peer() {
    let test = "floecast_peer_is_only_a_peer";
    if !have_all(test, &["ffmpeg", "curl"]) {
        return;
    }
    let tmp = TempDir::new("peer");
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/team.mp3".into(),
        p2psp: Some(P2pspConfig::Splitter(SplitterSettings {
            bind_address: Some("127.0.0.1".into()),
            ..Default::default()
        })),
        ..Default::default()
    });
    let srv = start(config).await;
    let splitter = splitter_addr(&srv, "/team.mp3").await;
    let _source = ffmpeg_source_live(&srv, "/team.mp3", MP3_ARGS, tmp.join("source.log")).await;

    let listen = free_port();
    let udp = free_tcp_udp_port();
    let mut peer = floecast(
        &tmp,
        "peer",
        &[
            "peer",
            &splitter.to_string(),
            "--listen",
            &listen.to_string(),
            "--bind",
            "127.0.0.1",
            "--udp-port",
            &udp.to_string(),
        ],
    );
    wait_port(([127, 0, 0, 1], listen).into(), &mut peer).await;
    let banner = wait_output(&mut peer, "P2PSP:").await;
    assert!(
        banner.contains(&format!("http://127.0.0.1:{listen}/stream")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("127.0.0.1, port {udp}")),
        "{banner}"
    );
    assert!(banner.contains("Sources: none accepted"), "{banner}");
    assert!(
        !banner.contains("/live") && !banner.contains("DEFAULT PASSWORD"),
        "{banner}"
    );

    // The splitter sees the peer at the pinned address.
    let want: SocketAddr = ([127, 0, 0, 1], udp).into();
    wait_for("the peer in the team from its pinned port", T, || {
        matches!(
            srv.app.server.tasks.teams.get("/team.mp3"),
            Some(floecast::team::TeamState::Splitter { stats: Some(s), .. })
                if s.peers.iter().any(|p| p.addr == want)
        )
    })
    .await;
    let url = format!("http://127.0.0.1:{listen}/stream");
    let deadline = Instant::now() + T;
    loop {
        let out = ffmpeg_decode(&url, 2).await;
        if out.success() && out.stderr.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the peer's stream does not play: {}\n{}",
            out.describe(),
            peer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // No source with the sample password, no admin either.
    let song = tmp.join("song.mp3");
    make_pink(&song, 2, &["-c:a", "libmp3lame"]).await;
    let push = run(
        ffmpeg(&[
            "-v",
            "error",
            "-re",
            "-i",
            song.to_str().unwrap(),
            "-c",
            "copy",
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
            &format!("icecast://source:hackme@127.0.0.1:{listen}/live"),
        ]),
        T,
    )
    .await;
    assert!(
        !push.success() && push.stderr_text().contains("401"),
        "the peer took a source: {}",
        push.describe()
    );
    let admin = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-u",
        "admin:hackme",
        &format!("http://127.0.0.1:{listen}/admin/stats"),
    ])
    .await;
    assert_eq!(admin.stdout_text(), "401", "{}", admin.describe());
    peer.assert_running();
}

/// A busy port stops the server and the peer with the address named.
#[tokio::test]
async fn bind_errors_name_the_address() {
    let tmp = TempDir::new("bind-errors");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_udp = udp.local_addr().unwrap();
    let free = free_port().to_string();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                "peer".into(),
                "127.0.0.1:9".into(),
                "--listen".into(),
                busy.port().to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
            ],
            busy.to_string(),
        ),
        (
            vec![
                "peer".into(),
                "127.0.0.1:9".into(),
                "--listen".into(),
                free.clone(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--udp-port".into(),
                busy_udp.port().to_string(),
            ],
            busy_udp.to_string(),
        ),
        (
            vec!["--port".into(), busy.port().to_string()],
            format!(":{}", busy.port()),
        ),
    ];
    for (args, named) in cases {
        let mut p = Command::new(BIN);
        p.args(&args).current_dir(tmp.path());
        let out = run(p, T).await;
        assert!(
            out.status.is_some_and(|s| !s.success()),
            "{args:?} started on a busy port: {}",
            out.describe()
        );
        let err = out.stderr_text();
        assert!(
            err.contains(&named) && err.contains("in use"),
            "{args:?}: the error does not name {named}: {err}"
        );
    }
}

// ---- 9: the <sources> limit ----------------------------------------------------------------

/// With `sources = 2` and three relays, two relays run and the third is refused at WARN
/// (and retried); a local source then gets icecast's 403 "too many sources connected", with
/// the reason in the body and at WARN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_limit_holds_relays_and_says_why() {
    let test = "sources_limit_holds_relays_and_says_why";
    if !have_all(test, &["ffmpeg", "curl"]) {
        return;
    }
    let tmp = TempDir::new("sources-limit");
    let upstream = start(test_config()).await;
    let mut feeds = Vec::new();
    for m in ["/a.mp3", "/b.mp3", "/c.mp3"] {
        feeds.push(
            ffmpeg_source_live(
                &upstream,
                m,
                MP3_ARGS,
                tmp.join(&format!("up{}.log", &m[1..2])),
            )
            .await,
        );
    }
    let port = free_port();
    let mut toml =
        format!("[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[limits]\nsources = 2\n");
    for m in ["/a.mp3", "/b.mp3", "/c.mp3"] {
        toml.push_str(&format!(
            "[[relay]]\nserver = \"127.0.0.1\"\nport = {}\nmount = \"{m}\"\n",
            upstream.addr.port()
        ));
    }
    let config = tmp.join("floecast.toml");
    std::fs::write(&config, toml).unwrap();
    let mut server = floecast(&tmp, "serve", &["--config", config.to_str().unwrap()]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_port(addr, &mut server).await;
    wait_output(&mut server, "too many sources connected").await;

    let live = |log: bool| async move {
        let mut n = 0;
        for m in ["/a.mp3", "/b.mp3", "/c.mp3"] {
            let r = exchange(
                addr,
                format!("HEAD {m} HTTP/1.0\r\n\r\n").as_bytes(),
                Duration::from_secs(3),
            )
            .await;
            if r.starts_with(b"HTTP/1.0 200") {
                n += 1;
            } else if log {
                eprintln!("{m}: {}", String::from_utf8_lossy(&r));
            }
        }
        n
    };
    let deadline = Instant::now() + T;
    while live(false).await < 2 {
        assert!(Instant::now() < deadline, "two relays never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The third stays out, through its retries.
    for _ in 0..6 {
        assert_eq!(live(true).await, 2, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = server.log_text();
    assert!(
        log.lines().any(|l| l.contains(" WARN ")
            && l.contains("relay")
            && l.contains("too many sources connected")),
        "no WARN for the refused relay:\n{log}"
    );

    // A local source: ffmpeg is refused, curl shows why.
    let song = tmp.join("song.mp3");
    make_pink(&song, 3, &["-c:a", "libmp3lame"]).await;
    let push = run(
        ffmpeg(&[
            "-v",
            "error",
            "-re",
            "-i",
            song.to_str().unwrap(),
            "-c",
            "copy",
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
            &format!("icecast://source:hackme@{addr}/local.mp3"),
        ]),
        T,
    )
    .await;
    assert!(
        !push.success() && push.stderr_text().contains("403"),
        "{}",
        push.describe()
    );
    let put = curl(&[
        "-T",
        song.to_str().unwrap(),
        "-u",
        "source:hackme",
        "-H",
        "Content-Type: audio/mpeg",
        "-w",
        "\n%{http_code}",
        &format!("http://{addr}/local.mp3"),
    ])
    .await;
    assert_eq!(
        put.stdout_text(),
        "too many sources connected\n403",
        "{}",
        put.describe()
    );
    // A source that sends audio with its head, without waiting for the answer (as DarkIce
    // and libshout's SOURCE do), still reads the reason: the refusal is not lost to a reset.
    let mut raw = connect(addr).await;
    let mut request = format!(
        "SOURCE /raw.mp3 HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\nContent-Type: audio/mpeg\r\n\r\n"
    )
    .into_bytes();
    request.extend(mp3_frames(300));
    raw.write_all(&request).await.unwrap();
    let _ = raw.write_all(&mp3_frames(300)).await;
    let reply = read_until_close(&mut raw, Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.0 403") && reply.ends_with("\r\n\r\ntoo many sources connected"),
        "{reply:?}"
    );
    let log = wait_output(&mut server, "source refused: too many sources connected").await;
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ")
                && l.contains("source refused: too many sources connected")),
        "{log}"
    );
}

// ---- 11: reconnecting sources -----------------------------------------------------------

/// Send a SOURCE login on a new connection; returns the connection and the reply.
async fn login(addr: SocketAddr, mount: &str) -> (tokio::net::TcpStream, String) {
    let mut s = connect(addr).await;
    s.write_all(
        format!(
            "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\nContent-Type: audio/mpeg\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut reply))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    (s, String::from_utf8_lossy(&reply[..n]).into_owned())
}

/// A client that drops its source connection and logs in again at once gets the mount every
/// time, even when its new SOURCE is read before the old connection's EOF; a source that
/// stays connected keeps its mount (icecast2 never takes over a live source).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_reconnecting_before_its_old_eof_gets_the_mount() {
    let srv = start(test_config()).await;
    let mount = "/race.mp3";
    let (mut old, reply) = login(srv.addr, mount).await;
    assert_eq!(reply, "HTTP/1.0 200 OK\r\n\r\n");
    for round in 0..30 {
        old.write_all(&mp3_frames(20)).await.unwrap();
        let new = if round % 2 == 0 {
            // VLC's order: the new login is on the wire before the old connection's FIN.
            let mut s = connect(srv.addr).await;
            s.write_all(
                format!(
                    "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {SOURCE_AUTH}\r\nContent-Type: audio/mpeg\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
            old.shutdown().await.unwrap();
            let mut reply = [0u8; 19];
            tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut reply))
                .await
                .expect("a reply")
                .unwrap_or_else(|e| panic!("round {round}: no reply ({e})"));
            assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n", "round {round}");
            s
        } else {
            // The FIN first, the new login right after it.
            old.shutdown().await.unwrap();
            let (s, reply) = login(srv.addr, mount).await;
            assert_eq!(reply, "HTTP/1.0 200 OK\r\n\r\n", "round {round}");
            s
        };
        old = new;
    }
    // A live source is not taken over.
    old.write_all(&mp3_frames(20)).await.unwrap();
    let live = srv.app.server.registry.get(mount).expect("mount");
    let (_, reply) = login(srv.addr, mount).await;
    assert!(
        reply.starts_with("HTTP/1.0 403") && reply.ends_with("Mountpoint in use"),
        "{reply}"
    );
    let still = srv.app.server.registry.get(mount).expect("mount");
    assert!(std::sync::Arc::ptr_eq(&live, &still) && !still.is_ended());
}

/// VLC `--loop` of a short Ogg file reconnects at every loop; every reconnect gets the mount
/// at once (no 403, no 30 s wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_loop_reconnects_get_the_mount_every_time() {
    let test = "vlc_loop_reconnects_get_the_mount_every_time";
    let Some(vlc) = VlcRunner::detect(test) else {
        return;
    };
    if !have_all(test, &["ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new(test);
    let media = tmp.join("short.ogg");
    make_pink(&media, 2, &["-c:a", "libvorbis", "-q:a", "4"]).await;
    let srv = start(test_config()).await;
    let mount = "/loop.ogg";
    let sout = format!(
        "#std{{access=shout,mux=ogg,dst=source:hackme@{}{mount}}}",
        srv.addr
    );
    let mut source = Proc::spawn(
        "vlc --loop",
        vlc.command(&tmp, &["--loop", media.to_str().unwrap(), "--sout", &sout]),
        tmp.join("vlc.log"),
    );
    wait_live(&srv.app.server, mount, &mut source, T).await;
    // Watch for 12 s: the longest stretch without a live mount is one reconnect.
    let until = Instant::now() + Duration::from_secs(12);
    let mut down_since: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    while Instant::now() < until {
        let up = srv
            .app
            .server
            .registry
            .get(mount)
            .is_some_and(|m| !m.is_ended());
        match (up, down_since) {
            (false, None) => down_since = Some(Instant::now()),
            (true, Some(t)) => {
                longest = longest.max(t.elapsed());
                down_since = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(t) = down_since {
        longest = longest.max(t.elapsed());
    }
    source.assert_running();
    let m = srv.app.server.metrics.render();
    let accepted = sample(
        &m,
        &format!(r#"floecast_source_connections_total{{mount="{mount}",outcome="accepted",protocol="source"}}"#),
    )
    .unwrap_or(0.0);
    let busy = sample(
        &m,
        &format!(
            r#"floecast_source_connections_total{{mount="{mount}",outcome="rejected_busy",protocol="source"}}"#
        ),
    );
    assert!(
        accepted >= 4.0,
        "only {accepted} logins in 12 s of 2 s loops"
    );
    assert_eq!(busy, None, "VLC was told the mount is in use:\n{m}");
    assert!(
        longest < Duration::from_secs(3),
        "the mount was without its source for {longest:?}"
    );
}

// ---- 10: master relay-all through an upstream restart ----------------------------------

/// icecast2's `/admin/streamlist.txt` (relay credentials).
async fn streamlist(ice: &Icecast2) -> String {
    let r = exchange(
        ice.addr,
        b"GET /admin/streamlist.txt HTTP/1.0\r\nAuthorization: Basic cmVsYXk6aGFja21l\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    String::from_utf8_lossy(&r).into_owned()
}

/// icecast2 is the master. Its source restarts; master polls in the gap do not list the
/// mount, yet floecast's listener (curl) stays connected and gets the new stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_relay_keeps_listeners_while_the_upstream_source_restarts() {
    let test = "master_relay_keeps_listeners_while_the_upstream_source_restarts";
    if !have_all(test, &["curl"]) {
        return;
    }
    let Some(ice) = Icecast2::start(test, "").await else {
        return;
    };
    let tmp = TempDir::new("master-gap");
    let mount = "/gap.mp3";
    let feed = ice.feed(mount, MP3_ARGS, tmp.join("ff1.log"), T).await;
    let mut c = test_config();
    c.master = Some(MasterConfig {
        server: "127.0.0.1".into(),
        port: ice.addr.port(),
        username: "relay".into(),
        password: "hackme".into(),
        update_interval: Duration::from_secs(1),
        on_demand: false,
        timing: RelayTiming {
            grace_period: Duration::from_secs(20),
            ..RelayTiming::default()
        },
        tls: Default::default(),
    });
    let fc = start(c).await;
    wait_for("the master's mount relayed", T, || {
        fc.app
            .server
            .tasks
            .relays
            .get(mount)
            .is_some_and(|r| r.state().name() == "up")
    })
    .await;
    let got = tmp.join("listener.mp3");
    let mut listener = {
        let mut c = Command::new("curl");
        c.args(["-sS", "-o", got.to_str().unwrap()])
            .arg(format!("http://{}{mount}", fc.addr));
        Proc::spawn("curl listener", c, tmp.join("curl.log"))
    };
    let size = || std::fs::metadata(&got).map_or(0, |m| m.len());
    wait_for("the listener gets audio", T, || size() > 16_000).await;

    drop(feed);
    let deadline = Instant::now() + T;
    while streamlist(&ice).await.contains(mount) {
        assert!(Instant::now() < deadline, "icecast2 still lists {mount}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Polls at 1 s intervals see the mount missing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    listener.assert_running();
    assert!(
        fc.app.server.registry.get(mount).is_some(),
        "the relay's mount is gone"
    );

    let _feed = ice.feed(mount, MP3_ARGS, tmp.join("ff2.log"), T).await;
    let before = size();
    wait_for("the same listener gets the restarted stream", T, || {
        size() > before + 32_000
    })
    .await;
    listener.assert_running();
    wait_listeners(&fc, mount, 1, T).await;
}

// ---- 14: smaller ----------------------------------------------------------------------------

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// `process_cpu_seconds_total` is the process's CPU time to the clock tick, not whole seconds
/// (a server using less than a second of CPU read 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_cpu_seconds_are_not_whole_seconds() {
    if !have_all("process_cpu_seconds", &["getconf"]) {
        return;
    }
    let tmp = TempDir::new("cpu");
    let port = free_port();
    let mut server = floecast(&tmp, "serve", &["--port", &port.to_string()]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_port(addr, &mut server).await;
    let clk: f64 = String::from_utf8_lossy(
        &Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    // Some work, so the process has used a few ticks (a fast machine needs more requests).
    for _ in 0..2000 {
        exchange(addr, b"GET /status-json.xsl HTTP/1.0\r\n\r\n", T).await;
        if cpu_ticks(server.pid()) >= 3 {
            break;
        }
    }
    let before = cpu_ticks(server.pid()) as f64 / clk;
    let page = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n", T).await;
    let after = cpu_ticks(server.pid()) as f64 / clk;
    let page = String::from_utf8_lossy(&page);
    let cpu = sample(&page, "process_cpu_seconds_total").expect("process_cpu_seconds_total");
    assert!(before > 0.0, "no CPU used?");
    assert!(
        cpu >= before - 1e-9 && cpu <= after + 1e-9,
        "process_cpu_seconds_total {cpu}, /proc says {before}..{after}"
    );
}

/// libshout's unauthenticated first SOURCE is a challenge, counted as such; only a wrong
/// password (ffmpeg here) counts as `rejected_auth`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libshout_challenge_is_not_counted_as_a_rejected_login() {
    let test = "libshout_challenge_is_not_counted_as_a_rejected_login";
    if !have_all(test, &["shout", "ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new("challenge");
    let media = tmp.join("song.ogg");
    make_pink(&media, 20, &["-c:a", "libvorbis"]).await;
    let srv = start(test_config()).await;
    let mut cmd = Command::new("shout");
    cmd.args([
        "--format",
        "ogg",
        "-H",
        "127.0.0.1",
        "-P",
        &srv.addr.port().to_string(),
        "--mount",
        "/shout.ogg",
        "--user",
        "source",
        "--pass",
        "hackme",
    ]);
    let file = std::fs::File::open(&media).unwrap();
    let mut shout = Proc::spawn_with("shout", cmd, tmp.join("shout.log"), Stdio::from(file));
    wait_live(&srv.app.server, "/shout.ogg", &mut shout, T).await;
    let bad = run(
        ffmpeg(&[
            "-v",
            "error",
            "-i",
            media.to_str().unwrap(),
            "-t",
            "1",
            "-c",
            "copy",
            "-content_type",
            "application/ogg",
            "-f",
            "ogg",
            &format!("icecast://source:wrong@{}/bad.ogg", srv.addr),
        ]),
        T,
    )
    .await;
    assert!(!bad.success(), "{}", bad.describe());
    // Requests before authentication create no mount labels (issue 11): both mounts were
    // unknown when they were refused, so they count as "other".
    let m = srv.app.server.metrics.render();
    let challenged = sample(
        &m,
        r#"floecast_source_connections_total{mount="other",outcome="challenged",protocol="source"}"#,
    );
    assert!(challenged >= Some(1.0), "no challenge counted:\n{m}");
    assert_eq!(
        sample(
            &m,
            r#"floecast_source_connections_total{mount="other",outcome="rejected_auth",protocol="source"}"#
        ),
        None,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"floecast_source_connections_total{mount="other",outcome="rejected_auth",protocol="put"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(!m.contains("mount=\"/bad.ogg\""), "{m}");
}

/// A failed admin login is logged with user `-`, as icecast2 logs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_login_logs_no_user() {
    if !have_all("failed_admin_login_logs_no_user", &["curl"]) {
        return;
    }
    let tmp = TempDir::new("admin-log");
    let log = tmp.join("access.log");
    let mut c = test_config();
    c.logging.access_log = Some(log.clone());
    let srv = start(c).await;
    let url = format!("http://{}/admin/stats", srv.addr);
    let bad = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-u",
        "typo-hackme:x",
        &url,
    ])
    .await;
    assert_eq!(bad.stdout_text(), "401");
    let good = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-u",
        "admin:hackme",
        &url,
    ])
    .await;
    assert_eq!(good.stdout_text(), "200");
    let text = std::fs::read_to_string(&log).unwrap();
    let failed = text
        .lines()
        .find(|l| l.contains("\"GET /admin/stats HTTP/1.1\" 401"))
        .unwrap_or_else(|| panic!("no 401 line:\n{text}"));
    assert!(
        failed.starts_with("127.0.0.1 - - [") && !failed.contains("typo-hackme"),
        "{failed}"
    );
}

/// A listener's access-log line is written when it leaves, with its real duration, not a
/// flush interval (1 s) or two later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_access_log_line_is_written_when_it_leaves() {
    if !have_all("listener_access_log_line", &["ffmpeg", "curl"]) {
        return;
    }
    let tmp = TempDir::new("access-timing");
    let port = free_port();
    let log = tmp.join("access.log");
    let config = tmp.join("floecast.toml");
    std::fs::write(
        &config,
        format!(
            "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n[logging]\naccess-log = \"{}\"\n",
            log.display()
        ),
    )
    .unwrap();
    let mut server = floecast(&tmp, "serve", &["--config", config.to_str().unwrap()]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_port(addr, &mut server).await;
    let mut feed = Proc::spawn(
        "ffmpeg source",
        interop_support::ffmpeg_source(addr, "/live.mp3", MP3_ARGS),
        tmp.join("ffmpeg.log"),
    );
    let deadline = Instant::now() + T;
    while !exchange(addr, b"HEAD /live.mp3 HTTP/1.0\r\n\r\n", T)
        .await
        .starts_with(b"HTTP/1.0 200")
    {
        feed.assert_running();
        assert!(Instant::now() < deadline, "the source never went live");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for round in 0..3 {
        let out = curl(&[
            "-o",
            "/dev/null",
            "--max-time",
            "2.5",
            &format!("http://{addr}/live.mp3"),
        ])
        .await;
        let left = Instant::now();
        assert_eq!(
            out.status.and_then(|s| s.code()),
            Some(28),
            "{}",
            out.describe()
        );
        let line = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("\"GET /live.mp3 HTTP/1.1\" 200"))
                .collect();
            if lines.len() > round {
                break lines[round].to_string();
            }
            assert!(left.elapsed() < Duration::from_secs(5), "no line:\n{text}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let late = left.elapsed();
        assert!(
            late < Duration::from_millis(500),
            "round {round}: logged {late:?} after the listener left"
        );
        let seconds: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(seconds, 2, "round {round}: {line}");
    }
}

/// `/status.xsl` is XHTML sent as `text/xml; charset=UTF-8`, exactly as icecast2 2.4.4 sends
/// it, and Chromium renders it as a page; a control character in a title (which breaks
/// icecast2's page into an XML error) does not break ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_xsl_renders_in_chromium_whatever_the_title() {
    let test = "status_xsl_renders_in_chromium_whatever_the_title";
    if !have_all(test, &["chromium", "ffmpeg", "curl"]) {
        return;
    }
    let tmp = TempDir::new("status-xsl");
    let srv = start(test_config()).await;
    let _feed = ffmpeg_source_live(&srv, "/live.mp3", MP3_ARGS, tmp.join("ffmpeg.log")).await;
    let set = curl(&[
        "-u",
        "admin:hackme",
        &format!(
            "http://{}/admin/metadata?mount=/live.mp3&mode=updinfo&song=Bell%01Tower%20%26%20%3CLive%3E",
            srv.addr
        ),
    ])
    .await;
    assert!(
        set.stdout_text().contains("Metadata update successful"),
        "{}",
        set.describe()
    );
    let head = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("http://{}/status.xsl", srv.addr),
    ])
    .await;
    assert!(
        head.stdout_text()
            .lines()
            .any(|l| l.trim() == "Content-Type: text/xml; charset=UTF-8"),
        "{}",
        head.stdout_text()
    );
    let out = interop_support::chromium_dump_dom(
        &tmp.join("profile"),
        3000,
        &[],
        &format!("http://{}/status.xsl", srv.addr),
    )
    .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("chromium finished")
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(!dom.contains("parsererror"), "an XML error page:\n{dom}");
    assert!(dom.contains("<h3>Mount Point /live.mp3</h3>"), "{dom}");
    assert!(dom.contains("BellTower &amp; &lt;Live&gt;"), "{dom}");
    assert_decodes(&format!("http://{}/live.mp3", srv.addr), 1).await;
}
