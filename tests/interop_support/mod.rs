//! Helpers for the real-client interop tests: temp dirs, external processes that are always
//! killed (by PID, on drop) and always time-bounded, running VLC as an unprivileged user when
//! the tests run as root, media generated with ffmpeg at test time, and small parsers for
//! what the clients receive (HTTP heads, ICY blocks, Ogg pages, WAV files).
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use floecast::server::Server;
use tokio::io::AsyncWriteExt;

use crate::common;

/// The user icecast2 changes to (`<changeowner>`) when the tests run as root.
pub const ICECAST2_USER: &str = "icecast2";

/// The unprivileged user VLC runs as when the tests run as root (`.ci/run` creates it).
pub const TEST_USER: &str = "floecast-test";

/// Every program in `programs` is on PATH; otherwise prints `SKIP: <program> not installed`
/// (or panics, when `FLOECAST_REQUIRE_CLIENTS=1`: see [`common::skip`]).
#[track_caller]
pub fn have_all(test: &str, programs: &[&str]) -> bool {
    for p in programs {
        if !common::on_path(p) {
            common::skip(&format!("{p} not installed ({test})"));
            return false;
        }
    }
    true
}

/// A fresh directory under the system temp dir (mode 0755), removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "floecast-interop-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Hand the directory and everything in it to `uid:gid` (so VLC may write its HOME there).
    pub fn chown_all(&self, uid: u32, gid: u32) {
        fn walk(p: &Path, uid: u32, gid: u32) {
            let _ = std::os::unix::fs::chown(p, Some(uid), Some(gid));
            if p.is_dir() {
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        walk(&e.path(), uid, gid);
                    }
                }
            }
        }
        walk(&self.path, uid, gid);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A background child process. Its stdout and stderr go to a log file; it is killed by PID
/// and reaped when dropped, whatever happened in the test.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawn `cmd` with stdin closed (use [`Proc::spawn_piped`] to feed it).
    pub fn spawn(name: &str, cmd: Command, log: PathBuf) -> Proc {
        Self::spawn_with(name, cmd, log, Stdio::null())
    }

    /// Spawn `cmd` with a stdin pipe; take it with [`Proc::take_stdin`].
    pub fn spawn_piped(name: &str, cmd: Command, log: PathBuf) -> Proc {
        Self::spawn_with(name, cmd, log, Stdio::piped())
    }

    /// Spawn `cmd` with the given stdin (e.g. a media file).
    pub fn spawn_with(name: &str, mut cmd: Command, log: PathBuf, stdin: Stdio) -> Proc {
        let out = fs::File::create(&log).expect("create process log");
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(stdin).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("stdin was piped")
    }

    /// Everything the process printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Wait (polling, bounded) for the process to end by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Panic with the process log if it has already ended.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.log_text()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The result of a run-to-completion program.
#[derive(Debug)]
pub struct Output {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(4000)]),
            self.stderr_text()
        )
    }
}

/// Run `cmd` to completion (stdin closed) on a blocking thread; killed by PID at `timeout`.
pub async fn run(cmd: Command, timeout: Duration) -> Output {
    tokio::task::spawn_blocking(move || run_blocking(cmd, timeout))
        .await
        .expect("runner thread")
}

fn run_blocking(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    // Readers hand back what they read through channels, so a grandchild that keeps the
    // pipes open (mplayer forks its cache process) cannot hold this call past the timeout.
    let reader = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .expect("pipe buffer")
                        .extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(());
        });
        (rx, shared)
    };
    let (out_done, out_buf) = reader(Box::new(child.stdout.take().expect("stdout")));
    let (err_done, err_buf) = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let grace = Instant::now() + Duration::from_secs(2);
    for done in [&out_done, &err_done] {
        let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
    }
    let take = |b: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
        std::mem::take(&mut *b.lock().expect("pipe buffer"))
    };
    Output {
        status,
        stdout: take(&out_buf),
        stderr: take(&err_buf),
    }
}

/// `ffmpeg -nostdin -hide_banner` plus `args`.
pub fn ffmpeg(args: &[&str]) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-nostdin", "-hide_banner"]).args(args);
    c
}

/// Generate a media file with ffmpeg from a lavfi sine (stereo, 44.1 kHz), world-readable.
pub async fn make_tone(path: &Path, seconds: u32, codec_args: &[&str]) {
    let src = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
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
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod media");
}

/// The ffmpeg command that streams a 30 s real-time 440 Hz stereo tone to `mount`.
pub fn ffmpeg_source(addr: SocketAddr, mount: &str, codec_args: &[&str]) -> Command {
    ffmpeg_source_for(addr, mount, codec_args, 30)
}

/// [`ffmpeg_source`] streaming for `seconds`.
pub fn ffmpeg_source_for(
    addr: SocketAddr,
    mount: &str,
    codec_args: &[&str],
    seconds: u32,
) -> Command {
    let url = format!("icecast://source:hackme@{addr}{mount}");
    let tone = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
    let mut args = vec![
        "-v", "warning", "-re", "-f", "lavfi", "-i", &tone, "-ac", "2",
    ];
    args.extend_from_slice(codec_args);
    args.push(&url);
    ffmpeg(&args)
}

/// ffmpeg output arguments for a 128 kbit/s MP3 source.
pub const MP3_ARGS: &[&str] = &[
    "-c:a",
    "libmp3lame",
    "-b:a",
    "128k",
    "-content_type",
    "audio/mpeg",
    "-f",
    "mp3",
];

/// [`MP3_ARGS`] with an `-ice_name` (sent as the source's `Ice-Name`) before `-f mp3`.
pub fn mp3_args_named(name: &str) -> Vec<&str> {
    let mut args: Vec<&str> = MP3_ARGS.to_vec();
    let at = args.len() - 2;
    args.splice(at..at, ["-ice_name", name]);
    args
}

/// ffmpeg output arguments for an Ogg Vorbis source.
pub const OGG_VORBIS_ARGS: &[&str] = &[
    "-c:a",
    "libvorbis",
    "-content_type",
    "application/ogg",
    "-f",
    "ogg",
];

/// [`OGG_VORBIS_ARGS`] with 100 ms Ogg pages, so a late listener soon gets a page boundary.
pub const OGG_VORBIS_SHORT_PAGE_ARGS: &[&str] = &[
    "-c:a",
    "libvorbis",
    "-content_type",
    "application/ogg",
    "-page_duration",
    "100000",
    "-f",
    "ogg",
];

/// Start an ffmpeg source ([`ffmpeg_source`], output in `log`) of `mount` on `srv` and wait
/// (up to 15 s) until the mount is live.
pub async fn ffmpeg_source_live(
    srv: &common::TestServer,
    mount: &str,
    codec_args: &[&str],
    log: PathBuf,
) -> Proc {
    let mut source = Proc::spawn(
        "ffmpeg source",
        ffmpeg_source(srv.addr, mount, codec_args),
        log,
    );
    wait_live(&srv.app.server, mount, &mut source, Duration::from_secs(15)).await;
    source
}

/// Decode `seconds` of `url` with ffmpeg to the null muxer (`-v error`): exit 0 and an empty
/// stderr mean no decode errors.
pub async fn ffmpeg_decode(url: &str, seconds: u32) -> Output {
    let t = seconds.to_string();
    run(
        ffmpeg(&["-v", "error", "-i", url, "-t", &t, "-f", "null", "-"]),
        Duration::from_secs(seconds as u64 + 20),
    )
    .await
}

/// Assert that ffmpeg decodes `seconds` of `url` cleanly.
pub async fn assert_decodes(url: &str, seconds: u32) {
    let out = ffmpeg_decode(url, seconds).await;
    assert!(
        out.success() && out.stderr.is_empty(),
        "ffmpeg did not decode {seconds} s of {url} cleanly: {}",
        out.describe()
    );
}

/// Wait until `mount` is live on `server`, panicking early (with its output) if `feeder` dies.
pub async fn wait_live(server: &Server, mount: &str, feeder: &mut Proc, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if server.registry.get(mount).is_some_and(|m| !m.is_ended()) {
            return;
        }
        feeder.assert_running();
        if Instant::now() >= deadline {
            panic!(
                "{mount} did not go live within {timeout:?}; source output:\n{}",
                feeder.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until `mount` is gone from the registry (its source ended).
pub async fn wait_gone(server: &Server, mount: &str, timeout: Duration) {
    common::wait_for(&format!("{mount} to end"), timeout, || {
        server.registry.get(mount).is_none_or(|m| m.is_ended())
    })
    .await;
}

/// A raw listener: send a GET (with extra header lines), return (head, body of at least `n`
/// bytes unless the server closes or `timeout` passes first).
pub async fn raw_get(
    addr: SocketAddr,
    path: &str,
    extra: &str,
    n: usize,
    timeout: Duration,
) -> (String, Vec<u8>) {
    let mut s = common::connect(addr).await;
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: interop-test\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let (head, mut body) = common::read_head(&mut s, timeout).await;
    if body.len() < n {
        let more = common::read_at_least(&mut s, n - body.len(), timeout).await;
        body.extend_from_slice(&more);
    }
    (head, body)
}

/// A raw listener without `Icy-MetaData` reading until the body holds at least `min_pages`
/// whole Ogg pages (or `timeout`). Returns (head, body).
pub async fn raw_get_ogg(
    addr: SocketAddr,
    path: &str,
    min_pages: usize,
    timeout: Duration,
) -> (String, Vec<u8>) {
    let mut s = common::connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: interop-test\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let deadline = tokio::time::Instant::now() + timeout;
    let (head, mut body) = common::read_head(&mut s, timeout).await;
    let mut buf = vec![0u8; 16 * 1024];
    while body.len() < 4 || (&body[..4] == b"OggS" && ogg_pages(&body).len() < min_pages) {
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(&mut s, &mut buf))
            .await
        {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    (head, body)
}

/// The value of header `name` (case-insensitive) in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// How to run VLC here: directly, or via `setpriv` as [`TEST_USER`] when we are root.
pub struct VlcRunner {
    /// `(uid, gid)` to run as, when we are root.
    pub user: Option<(u32, u32)>,
}

impl VlcRunner {
    /// `None` (after printing the SKIP reason) if VLC cannot run here.
    pub fn detect(test: &str) -> Option<VlcRunner> {
        if !have_all(test, &["cvlc"]) {
            return None;
        }
        if !running_as_root() {
            return Some(VlcRunner { user: None });
        }
        if !have_all(test, &["setpriv"]) {
            return None;
        }
        match user_ids(TEST_USER) {
            Some(ids) => Some(VlcRunner { user: Some(ids) }),
            None => {
                common::skip(&format!(
                    "running as root and no user {TEST_USER} to run VLC as \
                     (create it: useradd -r -M {TEST_USER}) ({test})"
                ));
                None
            }
        }
    }

    /// `cvlc -I dummy --no-video` with `args`, HOME in `home` (which is handed to the user).
    pub fn command(&self, home: &TempDir, args: &[&str]) -> Command {
        let mut c = match self.user {
            Some((uid, gid)) => {
                home.chown_all(uid, gid);
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--", "cvlc"]);
                c
            }
            None => Command::new("cvlc"),
        };
        c.args(["-I", "dummy", "--no-video", "--no-interact"])
            .args(args)
            .env("HOME", home.path());
        c
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is our effective uid).
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `(uid, gid)` of `user`, from `id`.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, user]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One parsed Ogg page.
#[derive(Clone)]
pub struct OggPage {
    pub header_type: u8,
    pub granule: u64,
    pub serial: u32,
    pub sequence: u32,
    /// Concatenated segment data (packet bytes) of the page.
    pub body: Vec<u8>,
    pub crc_ok: bool,
}

impl std::fmt::Debug for OggPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OggPage {{ type: {:#04x}, granule: {}, serial: {:#x}, seq: {}, {} bytes starting {:02x?}, crc_ok: {} }}",
            self.header_type,
            self.granule,
            self.serial,
            self.sequence,
            self.body.len(),
            &self.body[..self.body.len().min(12)],
            self.crc_ok
        )
    }
}

impl OggPage {
    pub fn bos(&self) -> bool {
        self.header_type & 0x02 != 0
    }
}

/// Parse consecutive whole Ogg pages from the start of `data`; stops at the first incomplete
/// page. Panics if the bytes at a page boundary are not `OggS` (the stream lost framing).
pub fn ogg_pages(data: &[u8]) -> Vec<OggPage> {
    let mut pages = Vec::new();
    let mut i = 0;
    while i + 27 <= data.len() {
        assert_eq!(
            &data[i..i + 4],
            b"OggS",
            "expected an Ogg page at body offset {i}, found {:02x?}",
            &data[i..(i + 16).min(data.len())]
        );
        let nseg = data[i + 26] as usize;
        if i + 27 + nseg > data.len() {
            break;
        }
        let body_len: usize = data[i + 27..i + 27 + nseg]
            .iter()
            .map(|&b| b as usize)
            .sum();
        let end = i + 27 + nseg + body_len;
        if end > data.len() {
            break;
        }
        let page = &data[i..end];
        let mut zeroed = page.to_vec();
        zeroed[22..26].fill(0);
        let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
        pages.push(OggPage {
            header_type: page[5],
            granule: u64::from_le_bytes(page[6..14].try_into().unwrap()),
            serial: u32::from_le_bytes(page[14..18].try_into().unwrap()),
            sequence: u32::from_le_bytes(page[18..22].try_into().unwrap()),
            body: page[27 + nseg..].to_vec(),
            crc_ok: ogg_crc(&zeroed) == crc,
        });
        i = end;
    }
    pages
}

/// Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, initial 0).
pub fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Assert that an Ogg listener body starts with a BOS page of `codec` (`b"\x01vorbis"`,
/// `b"OpusHead"`), followed by its comment header, and that all pages are intact.
pub fn assert_ogg_start(body: &[u8], bos_magic: &[u8], comment_magic: &[u8]) {
    assert!(
        body.len() >= 4 && &body[..4] == b"OggS",
        "Ogg listener body does not start with OggS: {:02x?}",
        &body[..body.len().min(32)]
    );
    let pages = ogg_pages(body);
    assert!(pages.len() >= 3, "too few whole Ogg pages: {}", pages.len());
    let first = &pages[0];
    assert!(first.bos(), "first page lacks the BOS flag: {first:?}");
    assert!(
        first.body.starts_with(bos_magic),
        "first page is not the {} identification header",
        String::from_utf8_lossy(bos_magic)
    );
    assert_eq!(first.sequence, 0, "BOS page must be page 0 of its stream");
    assert!(
        pages[1].body.starts_with(comment_magic),
        "second page does not start with the {} comment header",
        String::from_utf8_lossy(comment_magic)
    );
    for (k, p) in pages.iter().enumerate() {
        assert!(p.crc_ok, "Ogg page {k} has a bad CRC: {p:?}");
        assert_eq!(p.serial, first.serial, "page {k} is from another stream");
        if k > 0 {
            assert!(!p.bos(), "page {k} has a BOS flag in mid-stream");
        }
    }
}

/// Peak absolute sample of the first `data` chunk of a 16-bit PCM WAV file.
pub fn wav_peak(wav: &[u8]) -> Option<(usize, i32)> {
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return None;
    }
    let mut i = 12;
    while i + 8 <= wav.len() {
        let id = &wav[i..i + 4];
        let len = u32::from_le_bytes(wav[i + 4..i + 8].try_into().unwrap()) as usize;
        let start = i + 8;
        if id == b"data" {
            let end = start.saturating_add(len).min(wav.len());
            let data = &wav[start..end];
            let peak = data
                .chunks_exact(2)
                .map(|s| (i16::from_le_bytes([s[0], s[1]]) as i32).abs())
                .max()
                .unwrap_or(0);
            return Some((data.len(), peak));
        }
        i = start + len + (len & 1);
    }
    None
}

/// Both icecast2 and ffmpeg are on PATH; otherwise prints `SKIP: <program> not installed`.
pub fn icecast2_available(test: &str) -> bool {
    have_all(test, &["icecast2", "ffmpeg"])
}

/// A running icecast2 (the Debian package) on a loopback port, killed on drop. Its source,
/// relay and admin passwords are `hackme` (users `source`, `relay`, `admin`).
pub struct Icecast2 {
    pub addr: SocketAddr,
    pub proc: Proc,
    dir: TempDir,
}

impl Icecast2 {
    /// Start icecast2 on a free port with `extra` XML (relays, master settings, mounts)
    /// in its `<icecast>` config. A port picked here may be taken by the time icecast2 binds
    /// it, so a few are tried. `None` (after a SKIP line) when icecast2 or ffmpeg is not
    /// installed, or when running as root and there is no icecast2 user to change to.
    pub async fn start(test: &str, extra: &str) -> Option<Icecast2> {
        Self::launch(test, extra, None).await
    }

    /// As [`Icecast2::start`], on `port` (e.g. to come back where a stopped one was).
    pub async fn start_on(test: &str, extra: &str, port: u16) -> Option<Icecast2> {
        Self::launch(test, extra, Some(port)).await
    }

    async fn launch(test: &str, extra: &str, port: Option<u16>) -> Option<Icecast2> {
        if !icecast2_available(test) {
            return None;
        }
        // As root icecast2 refuses to run unless it can change to its own user, which must
        // then own its directory.
        let owner = if running_as_root() {
            match user_ids(ICECAST2_USER) {
                Some(ids) => Some(ids),
                None => {
                    common::skip(&format!(
                        "running as root and no {ICECAST2_USER} user for <changeowner> ({test})"
                    ));
                    return None;
                }
            }
        } else {
            None
        };
        let security = if owner.is_some() {
            "<security><chroot>0</chroot><changeowner><user>icecast2</user><group>icecast</group></changeowner></security>"
        } else {
            "<security><chroot>0</chroot></security>"
        };
        let dir = TempDir::new("icecast2");
        fs::create_dir_all(dir.join("log")).expect("log dir");
        let attempts = if port.is_some() { 1 } else { 5 };
        for attempt in 1..=attempts {
            let port = port.unwrap_or_else(common::free_port);
            let log = dir.join("log");
            let log = log.display();
            let xml = format!(
                r#"<icecast>
  <location>test</location><admin>test@localhost</admin><hostname>127.0.0.1</hostname>
  <limits><clients>100</clients><sources>10</sources><queue-size>524288</queue-size>
    <header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>hackme</source-password><relay-user>relay</relay-user>
    <relay-password>hackme</relay-password><admin-user>admin</admin-user><admin-password>hackme</admin-password></authentication>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  {extra}
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{log}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>4</loglevel></logging>
  {security}
</icecast>
"#
            );
            let conf = dir.join(&format!("icecast-{port}.xml"));
            fs::write(&conf, xml).expect("write icecast.xml");
            if let Some((uid, gid)) = owner {
                dir.chown_all(uid, gid);
            }
            let mut cmd = Command::new("icecast2");
            cmd.arg("-c").arg(&conf);
            let mut proc = Proc::spawn("icecast2", cmd, dir.join(&format!("icecast-{port}.out")));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && proc.exited().is_none() {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return Some(Icecast2 { addr, proc, dir });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let why = format!(
                "icecast2 did not come up on port {port} (attempt {attempt} of {attempts}): {}\n{}",
                proc.log_text(),
                error_log_tail(&dir)
            );
            if attempt == attempts {
                panic!("{why}");
            }
            eprintln!("{why}");
        }
        unreachable!("the last attempt panics")
    }

    /// Start an ffmpeg source ([`ffmpeg_source`], output in `log`) of `mount` on this
    /// icecast2 and wait until icecast2 serves it to a listener; the source must still run.
    pub async fn feed(
        &self,
        mount: &str,
        codec_args: &[&str],
        log: PathBuf,
        timeout: Duration,
    ) -> Proc {
        let mut ff = Proc::spawn("ffmpeg", ffmpeg_source(self.addr, mount, codec_args), log);
        common::wait_serving(self.addr, mount, timeout, || {
            format!("{}\n{}", ff.log_text(), self.error_log())
        })
        .await;
        ff.assert_running();
        ff
    }

    /// The icecast.xml this icecast2 runs with (to run floecast on the very same file).
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(&format!("icecast-{}.xml", self.addr.port()))
    }

    /// The last lines of icecast2's error log, for failure messages.
    pub fn error_log(&self) -> String {
        error_log_tail(&self.dir)
    }

    /// icecast2's `/status-json.xsl` response (head and body).
    pub async fn status_json(&self, timeout: Duration) -> String {
        let req = format!(
            "GET /status-json.xsl HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        );
        String::from_utf8_lossy(&common::exchange(self.addr, req.as_bytes(), timeout).await)
            .into_owned()
    }

    /// Listeners icecast2 reports on `mount` (from its admin stats).
    pub async fn listeners(&self, mount: &str) -> Option<u64> {
        let r = common::exchange(
            self.addr,
            format!("GET /admin/stats HTTP/1.0\r\n{}\r\n", common::ADMIN).as_bytes(),
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

    /// Wait until icecast2 reports `n` listeners on `mount`.
    pub async fn wait_listeners(&self, mount: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.listeners(mount).await;
            if got == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "icecast2 reports {got:?} listeners on {mount}, want {n}; {}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn error_log_tail(dir: &TempDir) -> String {
    let log = fs::read_to_string(dir.join("log/error.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    format!(
        "icecast2 error.log (last lines):\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// Headless Chromium that loads `url` with a `--virtual-time-budget` of `budget_ms` and
/// `--dump-dom`s it to stdout (piped; stderr discarded), profile in `profile`, plus `extra`
/// flags; killed when dropped.
pub fn chromium_dump_dom(
    profile: &Path,
    budget_ms: u32,
    extra: &[&str],
    url: &str,
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("chromium");
    c.args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(extra)
        .args([
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    c
}

/// `program` as a command that runs as [`TEST_USER`] through `setpriv` when we are root (for
/// programs that refuse root: VLC, liquidsoap); `None` after a skip when that is impossible.
pub fn unprivileged(test: &str, program: &str) -> Option<Command> {
    if !have_all(test, &[program]) {
        return None;
    }
    if !running_as_root() {
        return Some(Command::new(program));
    }
    if !have_all(test, &["setpriv"]) {
        return None;
    }
    let Some((uid, gid)) = user_ids(TEST_USER) else {
        common::skip(&format!(
            "running as root and no user {TEST_USER} to run {program} as ({test})"
        ));
        return None;
    };
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--", program]);
    Some(c)
}

/// The `source` object of `/status-json.xsl` on `addr` (floecast or icecast2) whose
/// `listenurl` ends with `mount`; `None` when the mount is not listed or the reply is not JSON.
pub async fn status_json_source(addr: SocketAddr, mount: &str) -> Option<serde_json::Value> {
    let doc = status_json(addr).await?;
    let sources = match doc.get("icestats")?.get("source")? {
        serde_json::Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    sources.into_iter().find(|s| {
        s.get("listenurl")
            .and_then(|u| u.as_str())
            .is_some_and(|u| u.ends_with(mount))
    })
}

/// `/status-json.xsl` on `addr`, parsed; `None` when it cannot be fetched or parsed.
pub async fn status_json(addr: SocketAddr) -> Option<serde_json::Value> {
    let req = format!("GET /status-json.xsl HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let reply = common::exchange(addr, req.as_bytes(), Duration::from_secs(5)).await;
    let (status, _, body) = common::split_reply(&reply);
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// A string field of a status-json source (numbers are shown as text, null as `None`).
pub fn json_text(source: &serde_json::Value, key: &str) -> Option<String> {
    match source.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A listener that records what a player would show as the title while it runs: each ICY
/// `StreamTitle` (when the server sends `icy-metaint`) and the TITLE/ARTIST of each Ogg
/// comment header (Vorbis, Opus) in the body. Stops when dropped.
pub struct TitleWatcher {
    seen: std::sync::Arc<std::sync::Mutex<WatchLog>>,
    task: tokio::task::JoinHandle<()>,
}

/// What a [`TitleWatcher`] saw.
#[derive(Clone, Debug, Default)]
pub struct WatchLog {
    /// The response head.
    pub head: String,
    /// Each non-empty ICY block's `StreamTitle` value, in order.
    pub icy: Vec<String>,
    /// Each Ogg comment header's (ARTIST, TITLE), in order.
    pub ogg: Vec<(Option<String>, Option<String>)>,
    /// Body bytes received.
    pub bytes: usize,
    /// The stream broke its own framing (bad ICY block or lost Ogg sync).
    pub error: Option<String>,
}

impl TitleWatcher {
    /// Listen to `mount` on `addr`, sending `Icy-MetaData: 1` (as players do).
    pub async fn start(addr: SocketAddr, mount: &str) -> TitleWatcher {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(WatchLog::default()));
        let log = seen.clone();
        let mount = mount.to_string();
        let task = tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                log.lock().expect("watch log").error = Some("connect failed".into());
                return;
            };
            let req = format!(
                "GET {mount} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: title-watcher\r\nIcy-MetaData: 1\r\n\r\n"
            );
            if s.write_all(req.as_bytes()).await.is_err() {
                return;
            }
            let (head, first) = common::read_head(&mut s, Duration::from_secs(10)).await;
            let metaint = header(&head, "icy-metaint").and_then(|v| v.parse::<usize>().ok());
            log.lock().expect("watch log").head = head;
            let mut decoder = StreamTitles::new(metaint);
            decoder.feed(&first, &log);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match tokio::io::AsyncReadExt::read(&mut s, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => decoder.feed(&buf[..n], &log),
                }
            }
        });
        TitleWatcher { seen, task }
    }

    /// A copy of what was seen so far.
    pub fn log(&self) -> WatchLog {
        self.seen.lock().expect("watch log").clone()
    }
}

impl Drop for TitleWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Splits a listener body into audio and ICY blocks, and Ogg audio into pages, recording
/// titles into a [`WatchLog`].
struct StreamTitles {
    metaint: Option<usize>,
    /// Audio bytes left before the next ICY length byte.
    until_meta: usize,
    /// A partial ICY block: (expected length, bytes so far).
    meta: Option<(usize, Vec<u8>)>,
    /// Audio not yet parsed into whole Ogg pages.
    ogg: Vec<u8>,
    is_ogg: Option<bool>,
}

impl StreamTitles {
    fn new(metaint: Option<usize>) -> StreamTitles {
        StreamTitles {
            metaint,
            until_meta: metaint.unwrap_or(usize::MAX),
            meta: None,
            ogg: Vec::new(),
            is_ogg: None,
        }
    }

    fn feed(&mut self, mut data: &[u8], log: &std::sync::Mutex<WatchLog>) {
        let mut log = log.lock().expect("watch log");
        while !data.is_empty() {
            if let Some((want, got)) = &mut self.meta {
                let take = (*want - got.len()).min(data.len());
                got.extend_from_slice(&data[..take]);
                data = &data[take..];
                if got.len() == *want {
                    let text = String::from_utf8_lossy(got)
                        .trim_end_matches('\0')
                        .to_string();
                    match text
                        .strip_prefix("StreamTitle='")
                        .and_then(|t| t.split("';").next())
                    {
                        Some(t) => log.icy.push(t.to_string()),
                        None if log.error.is_none() => {
                            log.error = Some(format!("bad ICY block {text:?}"));
                        }
                        None => {}
                    }
                    self.meta = None;
                    self.until_meta = self.metaint.unwrap_or(usize::MAX);
                }
                continue;
            }
            if self.until_meta == 0 {
                let len = data[0] as usize * 16;
                data = &data[1..];
                if len == 0 {
                    self.until_meta = self.metaint.unwrap_or(usize::MAX);
                } else {
                    self.meta = Some((len, Vec::with_capacity(len)));
                }
                continue;
            }
            let take = self.until_meta.min(data.len());
            self.audio(&data[..take], &mut log);
            if self.metaint.is_some() {
                self.until_meta -= take;
            }
            data = &data[take..];
        }
    }

    fn audio(&mut self, audio: &[u8], log: &mut WatchLog) {
        log.bytes += audio.len();
        if self.is_ogg.is_none() && !audio.is_empty() {
            self.ogg.extend_from_slice(audio);
            if self.ogg.len() >= 4 {
                self.is_ogg = Some(&self.ogg[..4] == b"OggS");
            }
            if self.is_ogg != Some(true) {
                self.ogg.clear();
            }
            self.ogg_pages(log);
            return;
        }
        if self.is_ogg == Some(true) {
            self.ogg.extend_from_slice(audio);
            self.ogg_pages(log);
        }
    }

    fn ogg_pages(&mut self, log: &mut WatchLog) {
        if self.is_ogg != Some(true) {
            return;
        }
        let mut at = 0;
        loop {
            let rest = &self.ogg[at..];
            if rest.len() < 27 {
                break;
            }
            if &rest[..4] != b"OggS" {
                if log.error.is_none() {
                    log.error = Some(format!(
                        "Ogg framing lost: {:02x?}",
                        &rest[..rest.len().min(8)]
                    ));
                }
                self.is_ogg = Some(false);
                self.ogg.clear();
                return;
            }
            let nseg = rest[26] as usize;
            if rest.len() < 27 + nseg {
                break;
            }
            let body: usize = rest[27..27 + nseg].iter().map(|&b| b as usize).sum();
            let end = 27 + nseg + body;
            if rest.len() < end {
                break;
            }
            let payload = &rest[27 + nseg..end];
            let comments = payload
                .strip_prefix(b"\x03vorbis")
                .or_else(|| payload.strip_prefix(b"OpusTags"));
            if let Some(c) = comments {
                log.ogg.push(vorbis_comment_tags(c));
            }
            at += end;
        }
        self.ogg.drain(..at);
    }
}

/// (ARTIST, TITLE) of a Vorbis comment block (the part after the packet magic). Comment
/// headers that span pages are cut short: the tags of interest come early.
pub fn vorbis_comment_tags(c: &[u8]) -> (Option<String>, Option<String>) {
    let u32_at = |i: usize| -> Option<usize> {
        c.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (mut artist, mut title) = (None, None);
    let Some(vendor) = u32_at(0) else {
        return (None, None);
    };
    let mut i = 4 + vendor;
    let Some(n) = u32_at(i) else {
        return (None, None);
    };
    i += 4;
    for _ in 0..n.min(1000) {
        let Some(len) = u32_at(i) else { break };
        let Some(field) = c.get(i + 4..i + 4 + len) else {
            break;
        };
        i += 4 + len;
        let field = String::from_utf8_lossy(field);
        if let Some((k, v)) = field.split_once('=') {
            if k.eq_ignore_ascii_case("title") {
                title = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("artist") {
                artist = Some(v.to_string());
            }
        }
    }
    (artist, title)
}
