//! Listener moves lose no audio: admin `moveclients`, fallback when a source leaves and
//! fallback-override when it returns, and `fallback-after-silence` with a stalled source.
//! Each source streams its own pink-noise MP3 (made by ffmpeg) at real-time pace, frame by
//! frame, so every frame a listener receives names its source and index; at each splice the
//! frames skipped (or repeated) are counted against when each frame reached the server, and
//! ffmpeg decodes the captured listener bytes with no errors. The same moves are measured
//! against icecast2.

mod common;
mod interop_support;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floecast::config::{Config, MountConfig};
use interop_support::{Icecast2, TempDir, ffmpeg, have_all, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One MPEG-1 Layer III frame lasts 1152 samples at 44.1 kHz.
const FRAME: Duration = Duration::from_nanos(1_152_000_000_000 / 44_100);
const T: Duration = Duration::from_secs(10);

/// The frames of one generated MP3 file.
struct Clip {
    frames: Vec<Bytes>,
}

/// Make `n` distinct pink-noise MP3 clips of `seconds` each (128 kbit/s CBR, no tags).
async fn clips(dir: &Path, n: usize, seconds: u32) -> Vec<Clip> {
    let mut out = Vec::new();
    for i in 0..n {
        let path = dir.join(format!("clip{i}.mp3"));
        let src = format!(
            "anoisesrc=color=pink:seed={}:duration={seconds}:sample_rate=44100",
            1000 + i
        );
        let p = path.to_str().expect("utf-8 path");
        let args = [
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &src,
            "-ac",
            "2",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-write_xing",
            "0",
            "-id3v2_version",
            "0",
            "-map_metadata",
            "-1",
            "-f",
            "mp3",
            "-y",
            p,
        ];
        let made = run(ffmpeg(&args), Duration::from_secs(60)).await;
        assert!(made.success(), "ffmpeg: {}", made.describe());
        let data = std::fs::read(&path).expect("read clip");
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Some(len) = frame_len(&data[pos..]) {
            if pos + len > data.len() {
                break;
            }
            frames.push(Bytes::copy_from_slice(&data[pos..pos + len]));
            pos += len;
        }
        assert!(frames.len() > 100, "clip {i}: {} frames", frames.len());
        out.push(Clip { frames });
    }
    out
}

/// Length of the MPEG-1 Layer III frame starting at `b`, if a header is there.
fn frame_len(b: &[u8]) -> Option<usize> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xFE != 0xFA {
        return None;
    }
    const KBPS: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const RATE: [usize; 3] = [44_100, 48_000, 32_000];
    let kbps = *KBPS.get((b[2] >> 4) as usize)?;
    let rate = *RATE.get(((b[2] >> 2) & 3) as usize)?;
    if kbps == 0 {
        return None;
    }
    Some(144 * kbps * 1000 / rate + ((b[2] >> 1) & 1) as usize)
}

const RUN: u8 = 0;
const STALL: u8 = 1;
const CLOSE: u8 = 2;

/// When each frame of a paced source went out, and when the source hung up.
#[derive(Default)]
struct Sent {
    at: Vec<Instant>,
    closed: Option<Instant>,
}

/// A source client streaming one clip's frames at real-time pace, one write per frame;
/// it can be told to stall (stay connected, send nothing) and to hang up.
struct Pacer {
    clip: usize,
    state: Arc<AtomicU8>,
    sent: Arc<Mutex<Sent>>,
    task: tokio::task::JoinHandle<()>,
}

impl Pacer {
    async fn start(addr: SocketAddr, mount: &str, clip: usize, frames: Vec<Bytes>) -> Pacer {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\n\r\n",
            common::SOURCE_AUTH
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let (head, _) = common::read_head(&mut s, T).await;
        assert!(head.contains(" 200 "), "source {mount} refused: {head}");
        let state = Arc::new(AtomicU8::new(RUN));
        let sent = Arc::new(Mutex::new(Sent::default()));
        let (st, se) = (state.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut next = tokio::time::Instant::now();
            let mut i = 0;
            while i < frames.len() {
                match st.load(Ordering::Acquire) {
                    CLOSE => break,
                    STALL => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        next = tokio::time::Instant::now();
                        continue;
                    }
                    _ => {}
                }
                tokio::time::sleep_until(next).await;
                if s.write_all(&frames[i]).await.is_err() {
                    break;
                }
                se.lock().unwrap().at.push(Instant::now());
                i += 1;
                next += FRAME;
            }
            drop(s);
            se.lock().unwrap().closed = Some(Instant::now());
        });
        Pacer {
            clip,
            state,
            sent,
            task,
        }
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    async fn close(self) -> Pacer {
        self.set(CLOSE);
        wait_task(&self.task).await;
        self
    }

    /// When frame `i` reached the server as a whole block: the framer confirms a frame by
    /// the next one's header, or by the end of the stream.
    fn arrival(&self, i: usize) -> Option<Instant> {
        let sent = self.sent.lock().unwrap();
        sent.at
            .get(i + 1)
            .copied()
            .or(sent.closed.filter(|_| i < sent.at.len()))
    }
}

async fn wait_task(task: &tokio::task::JoinHandle<()>) {
    let deadline = Instant::now() + T;
    while !task.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The bytes a listener received, and (offset, time) of each read.
type Reads = (Vec<u8>, Vec<(usize, Instant)>);

/// A listener reading `mount` into memory, with the time each read came in.
struct Capture {
    data: Arc<Mutex<Reads>>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    async fn start(addr: SocketAddr, mount: &str) -> Capture {
        let mut s = common::connect(addr).await;
        let req = format!("GET {mount} HTTP/1.0\r\nUser-Agent: moves/1.0\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let (head, first) = common::read_head(&mut s, T).await;
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        let data = Arc::new(Mutex::new((first, Vec::new())));
        let d = data.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut g = d.lock().unwrap();
                let at = g.0.len();
                g.0.extend_from_slice(&buf[..n]);
                g.1.push((at, Instant::now()));
            }
        });
        Capture { data, task }
    }

    fn stop(self) -> Reads {
        self.task.abort();
        std::mem::take(&mut *self.data.lock().unwrap())
    }
}

/// What a listener received, frame by frame: (clip, index) or unknown bytes.
struct Received {
    /// (clip, frame index, byte offset in the capture).
    frames: Vec<(usize, usize, usize)>,
    unknown_bytes: usize,
}

fn identify(data: &[u8], clips: &[Clip]) -> Received {
    let hash = |b: &[u8]| {
        let mut h = DefaultHasher::new();
        b.hash(&mut h);
        h.finish()
    };
    let mut known: HashMap<u64, Option<(usize, usize)>> = HashMap::new();
    for (c, clip) in clips.iter().enumerate() {
        for (i, f) in clip.frames.iter().enumerate() {
            // A frame two clips share (encoder start-up) names neither.
            known
                .entry(hash(f))
                .and_modify(|v| *v = None)
                .or_insert(Some((c, i)));
        }
    }
    let mut frames = Vec::new();
    let mut unknown_bytes = 0;
    let mut pos = 0;
    while pos < data.len() {
        let hit = frame_len(&data[pos..])
            .filter(|&len| pos + len <= data.len())
            .and_then(|len| Some((len, known.get(&hash(&data[pos..pos + len]))?)));
        match hit {
            Some((len, who)) => {
                if let Some((c, i)) = who {
                    frames.push((*c, *i, pos));
                }
                pos += len;
            }
            // A frame cut short by the capture's end is not a splice.
            None if data.len() - pos < 1500 && frame_len(&data[pos..]).is_some() => break,
            None => {
                if std::env::var("MOVES_DEBUG").is_ok() {
                    eprintln!("unknown byte at {pos} of {}", data.len());
                }
                unknown_bytes += 1;
                pos += 1;
            }
        }
    }
    Received {
        frames,
        unknown_bytes,
    }
}

/// One splice as the listener heard it.
#[derive(Debug)]
struct Splice {
    from: usize,
    to: usize,
    /// Frames of the new source skipped (negative: repeated) relative to the frame that
    /// reached the server right after the last one heard from the old source.
    lost: i64,
}

/// The splices in `got`, with `pacers` the sources by clip; also frames skipped within one
/// source (must be none).
fn splices(got: &Received, pacers: &HashMap<usize, &Pacer>) -> (Vec<Splice>, i64) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for w in got.frames.windows(2) {
        let ((c1, i1, _), (c2, i2, _)) = (w[0], w[1]);
        if c1 == c2 {
            skipped += i2 as i64 - i1 as i64 - 1;
            continue;
        }
        let left = pacers[&c1].arrival(i1).expect("a frame heard has arrived");
        let to = pacers[&c2];
        let mut expected = 0;
        while to.arrival(expected).is_some_and(|t| t <= left) {
            expected += 1;
        }
        out.push(Splice {
            from: c1,
            to: c2,
            lost: i2 as i64 - expected as i64,
        });
    }
    (out, skipped)
}

/// ffmpeg's `-v error` lines decoding `data` as MP3.
async fn decode_errors(dir: &TempDir, name: &str, data: &[u8]) -> Vec<String> {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, data).expect("write capture");
    let p = path.to_str().expect("utf-8 path");
    let out = run(
        ffmpeg(&["-v", "error", "-f", "mp3", "-i", p, "-f", "null", "-"]),
        Duration::from_secs(60),
    )
    .await;
    assert!(out.success(), "ffmpeg: {}", out.describe());
    out.stderr_text().lines().map(str::to_string).collect()
}

fn config(flush_ms: u64) -> Config {
    let mut c = common::test_config();
    c.tuning.flush_interval = Duration::from_millis(flush_ms);
    c
}

async fn admin(addr: SocketAddr, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.0\r\n{}\r\n", common::ADMIN);
    String::from_utf8_lossy(&common::exchange(addr, req.as_bytes(), T).await).into_owned()
}

/// What a run of moves measured.
struct Measured {
    splices: Vec<Splice>,
    skipped_within: i64,
    unknown_bytes: usize,
    decode_errors: Vec<String>,
}

impl Measured {
    async fn of(dir: &TempDir, name: &str, data: &[u8], clips: &[Clip], pacers: &[&Pacer]) -> Self {
        let got = identify(data, clips);
        let by_clip = pacers.iter().map(|p| (p.clip, *p)).collect();
        let (splices, skipped_within) = splices(&got, &by_clip);
        Measured {
            splices,
            skipped_within,
            unknown_bytes: got.unknown_bytes,
            decode_errors: decode_errors(dir, name, data).await,
        }
    }

    fn lost(&self) -> i64 {
        self.splices.iter().map(|s| s.lost.max(0)).sum::<i64>() + self.skipped_within.max(0)
    }

    fn summary(&self) -> String {
        format!(
            "{} splices, frames lost per splice {:?}, skipped within a source {}, unknown bytes {}, decode errors {}",
            self.splices.len(),
            self.splices.iter().map(|s| s.lost).collect::<Vec<_>>(),
            self.skipped_within,
            self.unknown_bytes,
            self.decode_errors.len()
        )
    }

    /// At most one frame lost or repeated per splice, none within a source, every byte a
    /// whole frame, and ffmpeg decodes it all without an error.
    fn assert_lossless(&self, what: &str, splices: usize) {
        eprintln!("{what}: {}", self.summary());
        assert!(self.splices.len() >= splices, "{what}: {}", self.summary());
        assert!(
            self.splices.iter().all(|s| (-1..=1).contains(&s.lost)),
            "{what}: {}",
            self.summary()
        );
        assert_eq!(self.skipped_within, 0, "{what}: {}", self.summary());
        assert_eq!(self.unknown_bytes, 0, "{what}: {}", self.summary());
        assert!(
            self.decode_errors.is_empty(),
            "{what}: {}\n{}",
            self.summary(),
            self.decode_errors.join("\n")
        );
    }
}

const MOVES: usize = 8;

/// Two live sources; the listener is moved back and forth every 600 ms with moveclients.
async fn admin_moves(addr: SocketAddr, dir: &TempDir, clips: &[Clip], name: &str) -> Measured {
    let a = Pacer::start(addr, "/a", 0, clips[0].frames.clone()).await;
    let b = Pacer::start(addr, "/b", 1, clips[1].frames.clone()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cap = Capture::start(addr, "/a").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for n in 0..MOVES {
        let (from, to) = if n % 2 == 0 {
            ("/a", "/b")
        } else {
            ("/b", "/a")
        };
        let reply = admin(
            addr,
            &format!("/admin/moveclients?mount={from}&destination={to}"),
        )
        .await;
        assert!(reply.contains("moved"), "{reply}");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (data, _) = cap.stop();
    let (a, b) = (a.close().await, b.close().await);
    Measured::of(dir, name, &data, clips, &[&a, &b]).await
}

async fn floecast_admin_moves(flush_ms: u64) {
    if !have_all("floecast_admin_moves", &["ffmpeg"]) {
        return;
    }
    let dir = TempDir::new("moves");
    let clips = clips(dir.path(), 2, 15).await;
    let srv = common::start(config(flush_ms)).await;
    let m = admin_moves(srv.addr, &dir, &clips, "admin.mp3").await;
    m.assert_lossless(&format!("floecast moveclients, flush {flush_ms} ms"), MOVES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moveclients_loses_no_audio_at_the_default_flush_interval() {
    floecast_admin_moves(Config::default().tuning.flush_interval.as_millis() as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moveclients_loses_no_audio_without_coalescing() {
    floecast_admin_moves(0).await;
}

/// `/main` falls back to `/fb` when its source hangs up and takes its listeners back when a
/// source returns (fallback-override), three times.
async fn fallback_flaps(flush_ms: u64) {
    if !have_all("fallback_flaps", &["ffmpeg"]) {
        return;
    }
    let dir = TempDir::new("moves");
    let clips = clips(dir.path(), 5, 12).await;
    let mut c = config(flush_ms);
    c.mounts.push(MountConfig {
        name: "/main".into(),
        fallback_mount: Some("/fb".into()),
        fallback_override: Some(true),
        ..Default::default()
    });
    let srv = common::start(c).await;
    let m = flaps(srv.addr, &dir, &clips, "flaps.mp3").await;
    m.assert_lossless(
        &format!("floecast fallback and override, flush {flush_ms} ms"),
        6,
    );
}

/// The main source hangs up and comes back three times (clips 1..=4; clip 0 feeds `/fb`).
async fn flaps(addr: SocketAddr, dir: &TempDir, clips: &[Clip], name: &str) -> Measured {
    let fb = Pacer::start(addr, "/fb", 0, clips[0].frames.clone()).await;
    let mut mains = vec![Pacer::start(addr, "/main", 1, clips[1].frames.clone()).await];
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let cap = Capture::start(addr, "/main").await;
    for (session, clip) in clips.iter().enumerate().skip(2) {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let gone = mains.pop().expect("a main source").close().await;
        mains.push(gone);
        // Long enough for either server to have let the old source go.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let back = Pacer::start(addr, "/main", session, clip.frames.clone()).await;
        mains.push(back);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (data, _) = cap.stop();
    let fb = fb.close().await;
    let mut pacers = vec![&fb];
    let last = mains.pop().expect("last").close().await;
    pacers.extend(mains.iter());
    pacers.push(&last);
    Measured::of(dir, name, &data, clips, &pacers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_and_override_lose_no_audio_at_the_default_flush_interval() {
    fallback_flaps(Config::default().tuning.flush_interval.as_millis() as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_and_override_lose_no_audio_without_coalescing() {
    fallback_flaps(0).await;
}

/// icecast2 on the same moveclients run, for the record (its numbers go in the report):
/// it splices mid-frame, so its listener gets bytes that are no whole frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_moveclients_for_comparison() {
    let Some(ice) = Icecast2::start("icecast2_moveclients_for_comparison", "").await else {
        return;
    };
    let dir = TempDir::new("moves");
    let clips = clips(dir.path(), 2, 15).await;
    let m = admin_moves(ice.addr, &dir, &clips, "icecast2.mp3").await;
    eprintln!(
        "icecast2 moveclients: {}, lost {} frames",
        m.summary(),
        m.lost()
    );
    let srv = common::start(config(1000)).await;
    let ours = admin_moves(srv.addr, &dir, &clips, "floecast.mp3").await;
    eprintln!(
        "floecast moveclients: {}, lost {} frames",
        ours.summary(),
        ours.lost()
    );
    assert!(
        ours.lost() < m.lost(),
        "floecast lost no less than icecast2"
    );
}

/// icecast2 on the same fallback and fallback-override run, for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_fallback_flaps_for_comparison() {
    let mount = "<mount><mount-name>/main</mount-name><fallback-mount>/fb</fallback-mount>\
                 <fallback-override>1</fallback-override></mount>";
    let Some(ice) = Icecast2::start("icecast2_fallback_flaps_for_comparison", mount).await else {
        return;
    };
    let dir = TempDir::new("moves");
    let clips = clips(dir.path(), 5, 12).await;
    let m = flaps(ice.addr, &dir, &clips, "icecast2-flaps.mp3").await;
    eprintln!(
        "icecast2 fallback and override: {}, lost {} frames",
        m.summary(),
        m.lost()
    );
    assert!(
        m.splices.len() >= 6,
        "icecast2 moved the listener: {}",
        m.summary()
    );
}

/// `/main` has `fallback-after-silence = 1`: its source stalls for 3 s without hanging up.
/// The listener hears the fallback about a second into the silence (not after the 10 s
/// source timeout), one arriving during the silence follows it, and with fallback-override
/// both hear the main source again once it speaks.
async fn silence_fallback(flush_ms: u64) {
    if !have_all("silence_fallback", &["ffmpeg"]) {
        return;
    }
    let dir = TempDir::new("moves");
    let clips = clips(dir.path(), 2, 12).await;
    let mut c = config(flush_ms);
    c.mounts.push(MountConfig {
        name: "/main".into(),
        fallback_mount: Some("/fb".into()),
        fallback_override: Some(true),
        fallback_after_silence: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let srv = common::start(c).await;
    let fb = Pacer::start(srv.addr, "/fb", 0, clips[0].frames.clone()).await;
    let main = Pacer::start(srv.addr, "/main", 1, clips[1].frames.clone()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let cap = Capture::start(srv.addr, "/main").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    main.set(STALL);
    let stalled = Instant::now();
    common::wait_listeners(&srv, "/fb", 1, T).await;
    let moved_after = stalled.elapsed();
    // A listener arriving during the silence follows within about a second.
    let late = Capture::start(srv.addr, "/main").await;
    common::wait_listeners(&srv, "/fb", 2, Duration::from_millis(1600)).await;
    assert!(
        srv.app.server.registry.get("/main").is_some(),
        "the silent source stays connected"
    );
    main.set(RUN);
    common::wait_listeners(&srv, "/main", 2, T).await;
    let (late, _) = late.stop();
    let late_errors = decode_errors(&dir, "late.mp3", &late).await;
    assert!(late_errors.is_empty(), "late listener: {late_errors:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (data, reads) = cap.stop();
    let (fb, main) = (fb.close().await, main.close().await);
    let m = Measured::of(&dir, "silence.mp3", &data, &clips, &[&fb, &main]).await;
    let what = format!("floecast fallback-after-silence, flush {flush_ms} ms");
    m.assert_lossless(&what, 2);
    assert_eq!(
        m.splices.iter().map(|s| (s.from, s.to)).collect::<Vec<_>>(),
        [(1, 0), (0, 1)],
        "{what}: to the fallback and back"
    );
    // When the listener got its first fallback frame, counted from the stall.
    let got = identify(&data, &clips);
    let first_fb = got.frames.iter().find(|f| f.0 == 0).map(|f| f.2);
    let heard = first_fb
        .and_then(|at| reads.iter().find(|(off, _)| *off + 1 > at).or(reads.last()))
        .map(|(_, t)| t.saturating_duration_since(stalled));
    eprintln!("{what}: moved {moved_after:?} and first fallback audio {heard:?} after the stall");
    let heard = heard.expect("fallback audio heard");
    assert!(
        heard >= Duration::from_millis(900) && heard < Duration::from_millis(1800),
        "{what}: fallback heard {heard:?} after the stall"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_source_falls_back_and_returns_at_the_default_flush_interval() {
    silence_fallback(Config::default().tuning.flush_interval.as_millis() as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_source_falls_back_and_returns_without_coalescing() {
    silence_fallback(0).await;
}

/// Ogg Vorbis moves between two ffmpeg sources: each splice falls on a page boundary and
/// starts with the new stream's header pages (a new chain), and ffmpeg decodes it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ogg_moves_start_a_new_chain_on_a_page_boundary() {
    if !have_all(
        "ogg_moves_start_a_new_chain_on_a_page_boundary",
        &["ffmpeg"],
    ) {
        return;
    }
    let dir = TempDir::new("moves");
    let srv = common::start(config(1000)).await;
    let args = interop_support::OGG_VORBIS_SHORT_PAGE_ARGS;
    let _a = interop_support::ffmpeg_source_live(&srv, "/a.ogg", args, dir.join("a.log")).await;
    let _b = interop_support::ffmpeg_source_live(&srv, "/b.ogg", args, dir.join("b.log")).await;
    let cap = Capture::start(srv.addr, "/a.ogg").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for n in 0..6 {
        let (from, to) = if n % 2 == 0 {
            ("/a.ogg", "/b.ogg")
        } else {
            ("/b.ogg", "/a.ogg")
        };
        let reply = admin(
            srv.addr,
            &format!("/admin/moveclients?mount={from}&destination={to}"),
        )
        .await;
        assert!(reply.contains("moved"), "{reply}");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (data, _) = cap.stop();
    let pages = interop_support::ogg_pages(&data);
    assert!(pages.iter().all(|p| p.crc_ok), "every page whole");
    let mut splices = 0;
    for w in pages.windows(2) {
        if w[1].serial != w[0].serial {
            splices += 1;
            assert!(w[1].bos(), "a new stream begins with its header: {w:?}");
        }
    }
    assert_eq!(splices, 6, "one new chain per move");
    let path = dir.join("ogg-moves.ogg");
    std::fs::write(&path, &data).expect("write capture");
    let p = path.to_str().expect("utf-8 path");
    let out = run(
        ffmpeg(&["-v", "error", "-i", p, "-f", "null", "-"]),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        out.success() && out.stderr.is_empty(),
        "ffmpeg decodes the moved Ogg listener cleanly: {}",
        out.describe()
    );
}
