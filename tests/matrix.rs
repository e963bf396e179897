//! The client matrix (issue 9): every common source client pushes MP3 and Ogg (Vorbis, and
//! Opus where it can) to floecast, over `protocol=http` and `icy` where it has both, and every
//! common player plays every mount family, with realistic media (tests/media). Titles must
//! follow every change, in ICY, in the Ogg stream and in status-json.
//!
//! Each combination runs independently (its own server, its own temp dir) and concurrently with
//! the others; every failing combination is collected and printed as "client / format: what
//! differed", and the test fails once, at the end, listing them all. A failing player
//! combination is replayed against icecast2 fed the same way, and the report says whether
//! icecast2 does better (a floecast bug) or fails too (a player limit, or a bug both share).

mod common;
mod interop_support;
mod media;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floecast::config::ListenSocket;
use interop_support::{
    Proc, TempDir, TitleWatcher, VlcRunner, WatchLog, have_all, json_text, run, status_json_source,
    unprivileged, wav_peak,
};
use media::{Kind, Media, Track};
use tokio::sync::Semaphore;

/// How many combinations run at once (the CI machine has 2 cores; most of the time is spent
/// waiting on real-time streams, not computing).
const PARALLEL: usize = 7;
/// How long a source may take to go live (liquidsoap and VLC start slowly under load).
const LIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a title change may take to show everywhere.
const TITLE_TIMEOUT: Duration = Duration::from_secs(8);
/// Peak sample (16-bit) above which decoded audio counts as sound: the pink noise peaks near
/// 8000; an MP3 decoder's silence stays in single digits.
const NOT_SILENT: i32 = 1000;

/// Every failing combination, collected from concurrent cases.
#[derive(Clone, Default)]
struct Report(Arc<Mutex<Vec<String>>>);

impl Report {
    fn fail(&self, combination: &str, what: impl Into<String>) {
        let line = format!("{combination}: {}", what.into());
        eprintln!("MATRIX FAIL {line}");
        self.0.lock().expect("report").push(line);
    }

    /// Panic with every failure, if there is any.
    fn finish(&self, what: &str, cases: usize) {
        let mut all = self.0.lock().expect("report").clone();
        all.sort();
        if !all.is_empty() {
            panic!(
                "{what}: {} failure(s) in {cases} combinations:\n  {}",
                all.len(),
                all.join("\n  ")
            );
        }
    }
}

/// The audio format a source pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Mp3,
    Vorbis,
    Opus,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "MP3",
            Format::Vorbis => "Ogg Vorbis",
            Format::Opus => "Ogg Opus",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Vorbis => "ogg",
            Format::Opus => "opus",
        }
    }

    fn is_ogg(self) -> bool {
        self != Format::Mp3
    }
}

/// Where a source's titles come from, and so how the test changes them.
#[derive(Clone, Debug)]
enum Titles {
    /// The source changes titles itself, track by track (playlists, chained Ogg).
    Tracks(Vec<Track>),
    /// The test sets titles with `/admin/metadata`, as a DJ tool would.
    Admin,
    /// ices2 stdinpcm: the test rewrites its metadata file and sends SIGUSR1.
    Signal(PathBuf),
    /// No way to change titles (Opus without chains: icecast2 refuses URL updates there).
    Fixed,
}

/// One source combination: a client, a format, a protocol.
struct SourceCase {
    client: &'static str,
    format: Format,
    /// `"http"` or `"icy"` (the SHOUTcast v1 port, port+1).
    protocol: &'static str,
}

impl SourceCase {
    fn label(&self) -> String {
        format!(
            "source {} / {} / {}",
            self.client,
            self.format.name(),
            self.protocol
        )
    }

    fn mount(&self) -> String {
        format!(
            "/{}-{}.{}",
            self.client.replace(' ', "-"),
            self.protocol,
            self.format.ext()
        )
    }
}

fn all_source_cases() -> Vec<SourceCase> {
    let c = |client, format, protocol| SourceCase {
        client,
        format,
        protocol,
    };
    use Format::*;
    vec![
        c("ffmpeg", Mp3, "http"),
        c("ffmpeg", Vorbis, "http"),
        c("ffmpeg", Opus, "http"),
        c("vlc", Mp3, "http"),
        // VLC (libshout) tries the ICY port first when there is one.
        c("vlc", Mp3, "icy"),
        c("vlc", Vorbis, "http"),
        c("vlc", Opus, "http"),
        c("liquidsoap", Mp3, "http"),
        c("liquidsoap", Mp3, "icy"),
        c("liquidsoap", Vorbis, "http"),
        c("liquidsoap", Vorbis, "icy"),
        c("liquidsoap", Opus, "http"),
        c("ezstream", Mp3, "http"),
        c("ezstream", Mp3, "icy"),
        c("ezstream", Vorbis, "http"),
        c("ices2 playlist", Vorbis, "http"),
        c("ices2 stdinpcm", Vorbis, "http"),
        c("gstreamer", Mp3, "http"),
        c("gstreamer", Mp3, "icy"),
        c("gstreamer", Vorbis, "http"),
        c("gstreamer", Opus, "http"),
        c("shout", Mp3, "http"),
        c("shout", Mp3, "icy"),
        c("shout", Vorbis, "http"),
    ]
}

const SOURCE_PROGRAMS: &[&str] = &[
    "ffmpeg",
    "cvlc",
    "liquidsoap",
    "ezstream",
    "ices2",
    "gst-launch-1.0",
    "shout",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_client_pushes_mp3_and_ogg_with_titles() {
    let test = "every_source_client_pushes_mp3_and_ogg_with_titles";
    if !have_all(test, SOURCE_PROGRAMS) {
        return;
    }
    let Some(vlc) = VlcRunner::detect(test) else {
        return;
    };
    let vlc = Arc::new(vlc);
    let media = Arc::new(Media::new());
    // Generate everything up front, concurrently, so cases do not wait on each other.
    tokio::join!(
        media.get(Kind::PinkMp3),
        media.get(Kind::PinkVorbis),
        media.get(Kind::PinkOpus),
        media.get(Kind::ChainedVorbis),
        media.playlist("mp3"),
        media.playlist("ogg"),
    );
    let report = Report::default();
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let cases = all_source_cases();
    let n = cases.len();
    let mut tasks = Vec::new();
    for case in cases {
        let (media, report, gate, vlc) = (media.clone(), report.clone(), gate.clone(), vlc.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.expect("semaphore");
            let started = Instant::now();
            let label = case.label();
            let mine = Report::default();
            run_source_case(&case, &media, &vlc, &mine).await;
            let failures = mine.0.lock().expect("report").clone();
            eprintln!(
                "{label}: {} in {:.1}s",
                if failures.is_empty() { "ok" } else { "FAILED" },
                started.elapsed().as_secs_f32()
            );
            report.0.lock().expect("report").extend(failures);
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            report.fail("matrix", format!("a case panicked: {e}"));
        }
    }
    report.finish("source clients", n);
}

/// The server a source case pushes to: its own, with an ICY port for `icy` cases.
async fn case_server(case: &SourceCase) -> common::TestServer {
    let mut config = common::test_config();
    if case.protocol == "icy" {
        config.listen = vec![ListenSocket {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            shoutcast_mount: Some(case.mount()),
            tls: Default::default(),
        }];
        return common::start_with_icy_port(config).await;
    }
    common::start(config).await
}

async fn run_source_case(case: &SourceCase, media: &Media, vlc: &VlcRunner, report: &Report) {
    let label = case.label();
    let mount = case.mount();
    let srv = case_server(case).await;
    let tmp = TempDir::new(&format!("matrix-{}", case.client.replace(' ', "-")));
    let (mut source, titles) = match start_source(case, &srv, &mount, media, vlc, &tmp).await {
        Ok(s) => s,
        Err(e) => return report.fail(&label, e),
    };
    if let Err(e) = wait_live(&srv, &mount, &mut source).await {
        return report.fail(&label, e);
    }
    let url = format!("http://{}{mount}", srv.addr);

    // A player-like listener from the start, recording titles (ICY and in-stream Ogg tags).
    let watcher = TitleWatcher::start(srv.addr, &mount).await;

    // Decodable, and not silence. Not for liquidsoap's chained Ogg Opus: ffmpeg 5.1 (and mpv,
    // which uses it) fail to join that stream with "Packet processing failed" on icecast2
    // just the same, while VLC decodes it; there the listener's Ogg framing (checked below)
    // stands in for decoding.
    let chained_opus = case.format == Format::Opus && matches!(titles, Titles::Tracks(_));
    if !chained_opus {
        if let Err(e) = decode_check(&url, &tmp.join("decoded.wav")).await {
            report.fail(&label, format!("ffmpeg as listener: {e}"));
        }
    }

    // Titles follow every change.
    let title_errors = match &titles {
        Titles::Tracks(tracks) => follow_tracks(case, &srv, &mount, tracks, &watcher).await,
        Titles::Admin => follow_admin(case, &srv, &mount, &watcher).await,
        Titles::Signal(file) => follow_signal(case, &srv, &mount, file, &source, &watcher).await,
        Titles::Fixed => Vec::new(),
    };
    for e in title_errors {
        report.fail(&label, e);
    }

    let log = watcher.log();
    if let Some(e) = &log.error {
        report.fail(&label, format!("listener stream broken: {e}"));
    }
    // At least three seconds have passed: more than a second of the slowest stream (Opus at
    // 96 kbit/s).
    if log.bytes < 16 * 1024 {
        report.fail(
            &label,
            format!("the listener received only {} bytes of stream", log.bytes),
        );
    }
    let want_type: &[&str] = match case.format {
        Format::Mp3 => &["audio/mpeg"],
        _ => &["application/ogg", "audio/ogg"],
    };
    let got_type = interop_support::header(&log.head, "content-type").unwrap_or("");
    if !want_type.contains(&got_type) {
        report.fail(
            &label,
            format!("listener Content-Type {got_type:?}, want one of {want_type:?}"),
        );
    }
    // icecast2 sends no ICY metadata on Ogg (spec §2.4, wire-captures quirk 13): players such
    // as mplayer cannot demux Ogg with ICY blocks in it.
    if case.format.is_ogg() && interop_support::header(&log.head, "icy-metaint").is_some() {
        report.fail(
            &label,
            "Ogg listener that sent Icy-MetaData: 1 got icy-metaint (icecast2 sends none on Ogg)",
        );
    }
    if let Some(status) = source.exited() {
        report.fail(
            &label,
            format!(
                "the source client exited during the test ({status}): {}",
                tail(&source.log_text(), 15)
            ),
        );
    }
}

/// Start the client of `case`, pushing to `mount` on `srv`.
async fn start_source(
    case: &SourceCase,
    srv: &common::TestServer,
    mount: &str,
    media: &Media,
    vlc: &VlcRunner,
    tmp: &TempDir,
) -> Result<(Proc, Titles), String> {
    let addr = srv.addr;
    let host = "127.0.0.1";
    let port = addr.port().to_string();
    let log = tmp.join("source.log");
    let pink = match case.format {
        Format::Mp3 => media.get(Kind::PinkMp3).await,
        Format::Vorbis => media.get(Kind::PinkVorbis).await,
        Format::Opus => media.get(Kind::PinkOpus).await,
    };
    let pink = pink.to_str().expect("utf-8 path").to_string();
    let admin_or_fixed = if case.format == Format::Opus {
        Titles::Fixed
    } else {
        Titles::Admin
    };
    match case.client {
        "ffmpeg" => {
            let (ctype, muxer) = match case.format {
                Format::Mp3 => ("audio/mpeg", "mp3"),
                Format::Vorbis => ("application/ogg", "ogg"),
                Format::Opus => ("audio/ogg", "ogg"),
            };
            let url = format!("icecast://source:hackme@{addr}{mount}");
            let kind = match case.format {
                Format::Mp3 => Kind::PinkMp3,
                Format::Vorbis => Kind::PinkVorbis,
                Format::Opus => Kind::PinkOpus,
            };
            let mut args = vec!["-v".to_string(), "warning".to_string()];
            args.extend(media::live_args(kind).expect("a live kind"));
            args.extend(["-content_type", ctype, "-f", muxer, &url].map(String::from));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let cmd = interop_support::ffmpeg(&args);
            Ok((Proc::spawn("ffmpeg", cmd, log), admin_or_fixed))
        }
        "vlc" => {
            let (mux, extra): (&str, &[&str]) = match case.format {
                Format::Mp3 => ("raw", &["--sout-shout-mp3"]),
                _ => ("ogg", &[]),
            };
            let sout = format!("#std{{access=shout,mux={mux},dst=source:hackme@{addr}{mount}}}");
            let mut args = vec!["--loop", pink.as_str(), "--sout", sout.as_str()];
            args.extend_from_slice(extra);
            Ok((
                Proc::spawn("vlc", vlc.command(tmp, &args), log),
                admin_or_fixed,
            ))
        }
        "liquidsoap" => {
            let (list, encoder) = match case.format {
                Format::Mp3 => ("mp3", "%mp3(bitrate=128)"),
                Format::Vorbis => ("ogg", "%ogg(%vorbis)"),
                // Opus from the Vorbis playlist: liquidsoap re-encodes, and each track
                // becomes a new Ogg chain with its own OpusTags.
                Format::Opus => ("ogg", "%ogg(%opus(bitrate=96))"),
            };
            let tracks = media.tracks(list).await;
            let playlist = media.playlist(list).await;
            let script = tmp.join("source.liq");
            std::fs::write(
                &script,
                format!(
                    r#"settings.log.stdout.set(true)
settings.log.file.set(false)
settings.log.level.set(3)
s = mksafe(playlist(mode="normal", reload_mode="never", "{}"))
output.icecast({encoder}, host="{host}", port={port}, password="hackme", mount="{mount}",
  protocol="{}", name="liquidsoap matrix", s)
"#,
                    playlist.display(),
                    case.protocol
                ),
            )
            .map_err(|e| format!("write script: {e}"))?;
            let mut cmd = unprivileged("matrix", "liquidsoap").ok_or("no liquidsoap")?;
            cmd.arg(&script).env("HOME", "/tmp");
            Ok((Proc::spawn("liquidsoap", cmd, log), Titles::Tracks(tracks)))
        }
        "ezstream" => {
            let (list, fmt) = match case.format {
                Format::Mp3 => ("mp3", "MP3"),
                _ => ("ogg", "Ogg"),
            };
            let tracks = media.tracks(list).await;
            let playlist = media.playlist(list).await;
            let conf = tmp.join("ezstream.xml");
            std::fs::write(
                &conf,
                format!(
                    r#"<ezstream>
  <servers><server><protocol>{}</protocol><hostname>{host}</hostname><port>{port}</port>
    <user>source</user><password>hackme</password><tls>None</tls></server></servers>
  <streams><stream><mountpoint>{mount}</mountpoint><format>{fmt}</format><public>No</public>
    <stream_name>ezstream matrix</stream_name></stream></streams>
  <intakes><intake><type>playlist</type><filename>{}</filename></intake></intakes>
</ezstream>
"#,
                    case.protocol.to_ascii_uppercase(),
                    playlist.display()
                ),
            )
            .map_err(|e| format!("write config: {e}"))?;
            // ezstream refuses a config file others can read.
            set_mode(&conf, 0o600);
            let mut cmd = Command::new("ezstream");
            cmd.arg("-c").arg(&conf);
            Ok((Proc::spawn("ezstream", cmd, log), Titles::Tracks(tracks)))
        }
        "ices2 playlist" | "ices2 stdinpcm" => {
            let pcm = case.client.ends_with("stdinpcm");
            let meta = tmp.join("metadata.txt");
            let (input, encode, titles) = if pcm {
                std::fs::write(&meta, "artist=Signal Artist\ntitle=Signal Title 0\n")
                    .map_err(|e| format!("write metadata: {e}"))?;
                (
                    format!(
                        r#"<module>stdinpcm</module><param name="rate">44100</param>
      <param name="channels">2</param><param name="metadata">1</param>
      <param name="metadatafilename">{}</param>"#,
                        meta.display()
                    ),
                    "<encode><quality>4</quality><samplerate>44100</samplerate><channels>2</channels></encode>",
                    Titles::Signal(meta.clone()),
                )
            } else {
                let tracks = media.tracks("ogg").await;
                (
                    format!(
                        r#"<module>playlist</module><param name="type">basic</param>
      <param name="file">{}</param><param name="random">0</param><param name="once">0</param>"#,
                        media.playlist("ogg").await.display()
                    ),
                    "",
                    Titles::Tracks(tracks),
                )
            };
            let conf = tmp.join("ices.xml");
            std::fs::write(
                &conf,
                format!(
                    r#"<ices>
  <background>0</background><logpath>{}</logpath><logfile>ices.log</logfile>
  <loglevel>3</loglevel><consolelog>1</consolelog>
  <stream>
    <metadata><name>ices2 matrix</name><genre>Test</genre><description>ices2</description></metadata>
    <input>{input}</input>
    <instance><hostname>{host}</hostname><port>{port}</port><password>hackme</password>
      <mount>{mount}</mount>{encode}</instance>
  </stream>
</ices>
"#,
                    tmp.path().display()
                ),
            )
            .map_err(|e| format!("write config: {e}"))?;
            let mut cmd = Command::new("ices2");
            cmd.arg(&conf);
            if pcm {
                // Raw PCM on stdin, produced in real time by ffmpeg through a pipe.
                let mut producer = std::process::Command::new("ffmpeg");
                producer
                    .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i"])
                    .arg("anoisesrc=color=pink:sample_rate=44100:amplitude=0.25:duration=60")
                    .args(["-ac", "2", "-f", "s16le", "-"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .stdin(Stdio::null());
                let mut child = producer.spawn().map_err(|e| format!("ffmpeg pcm: {e}"))?;
                let out = child.stdout.take().ok_or("no ffmpeg stdout")?;
                let proc = Proc::spawn_with("ices2", cmd, log, Stdio::from(out));
                // The producer ends by itself when ices2 closes the pipe (or after 60 s);
                // reap it in the background.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                Ok((proc, titles))
            } else {
                Ok((Proc::spawn("ices2", cmd, log), titles))
            }
        }
        "gstreamer" => {
            let enc = match case.format {
                Format::Mp3 => {
                    "audio/x-raw,rate=44100,channels=2 ! audioconvert ! lamemp3enc target=bitrate bitrate=128 cbr=true"
                }
                Format::Vorbis => {
                    "audio/x-raw,rate=44100,channels=2 ! audioconvert ! vorbisenc bitrate=128000 ! oggmux"
                }
                Format::Opus => {
                    "audio/x-raw,rate=48000,channels=2 ! audioconvert ! opusenc bitrate=96000 ! oggmux"
                }
            };
            let pipeline = format!(
                "audiotestsrc is-live=true wave=pink-noise volume=0.25 ! {enc} ! \
                 shout2send ip={host} port={port} password=hackme mount={mount} streamname=gst-matrix \
                 protocol={}",
                case.protocol
            );
            let mut cmd = Command::new("gst-launch-1.0");
            cmd.arg("-q").args(pipeline.split_whitespace());
            Ok((Proc::spawn("gstreamer", cmd, log), admin_or_fixed))
        }
        "shout" => {
            // libshout paces the file itself; MP3 gets admin titles, Ogg is the chained file
            // whose titles change track by track.
            let (file, format, titles) = match case.format {
                Format::Mp3 => (media.get(Kind::PinkMp3).await, "mp3", Titles::Admin),
                _ => (
                    media.get(Kind::ChainedVorbis).await,
                    "ogg",
                    Titles::Tracks(media.tracks("ogg").await),
                ),
            };
            let mut cmd = Command::new("shout");
            // `--usage` must come before `--format` for MP3.
            cmd.args([
                "--usage", "audio", "--format", format, "-H", host, "-P", &port,
            ])
            .args(["--mount", mount, "--user", "source", "--pass", "hackme"])
            .args(["--proto", case.protocol]);
            let input = std::fs::File::open(&file).map_err(|e| format!("open media: {e}"))?;
            Ok((
                Proc::spawn_with("shout", cmd, log, Stdio::from(input)),
                titles,
            ))
        }
        other => Err(format!("unknown client {other}")),
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Wait until `mount` is live (with a source that has sent data), or explain why not.
async fn wait_live(srv: &common::TestServer, mount: &str, source: &mut Proc) -> Result<(), String> {
    let deadline = Instant::now() + LIVE_TIMEOUT;
    loop {
        if srv
            .app
            .server
            .registry
            .get(mount)
            .is_some_and(|m| !m.is_ended())
        {
            return Ok(());
        }
        if let Some(status) = source.exited() {
            return Err(format!(
                "client exited ({status}) before {mount} went live:\n{}",
                tail(&source.log_text(), 20)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{mount} did not go live within {LIVE_TIMEOUT:?}; client output:\n{}",
                tail(&source.log_text(), 20)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `n` lines of `text`, indented, for failure messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("      | {}", &l[..l.len().min(300)]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// ffmpeg decodes 3 s of `url` to a WAV file without errors, and it is not silence.
async fn decode_check(url: &str, wav: &std::path::Path) -> Result<(), String> {
    let w = wav.to_str().expect("utf-8 path");
    let out = run(
        interop_support::ffmpeg(&[
            "-v",
            "error",
            "-i",
            url,
            "-t",
            "3",
            "-ac",
            "2",
            "-ar",
            "44100",
            "-c:a",
            "pcm_s16le",
            "-y",
            w,
        ]),
        Duration::from_secs(25),
    )
    .await;
    if !out.success() {
        return Err(format!("exit {:?}: {}", out.status, out.stderr_text()));
    }
    if !out.stderr.is_empty() {
        return Err(format!(
            "decode errors: {}",
            first_lines(&out.stderr_text(), 5)
        ));
    }
    silence_check(wav, 2.0)
}

/// The WAV at `path` holds at least `seconds` of 44.1 kHz stereo 16-bit audio that is not
/// silence.
fn silence_check(path: &std::path::Path, seconds: f32) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("no decoded output: {e}"))?;
    let (pcm, peak) =
        wav_peak(&data).ok_or_else(|| format!("output is not a PCM WAV ({} bytes)", data.len()))?;
    let want = (seconds * 44_100.0 * 4.0) as usize;
    if pcm < want {
        return Err(format!(
            "only {pcm} bytes of PCM decoded, want at least {want} ({seconds} s)"
        ));
    }
    if peak < NOT_SILENT {
        return Err(format!("decoded audio is silence (peak {peak})"));
    }
    Ok(())
}

/// As [`silence_check`], for headerless 16-bit stereo PCM at 44.1 kHz.
fn raw_silence_check(pcm: &[u8], seconds: f32) -> Result<(), String> {
    let want = (seconds * 44_100.0 * 4.0) as usize;
    if pcm.len() < want {
        return Err(format!(
            "only {} bytes of PCM decoded, want at least {want} ({seconds} s)",
            pcm.len()
        ));
    }
    let peak = pcm
        .chunks_exact(2)
        .map(|s| (i16::from_le_bytes([s[0], s[1]]) as i32).abs())
        .max()
        .unwrap_or(0);
    if peak < NOT_SILENT {
        return Err(format!("decoded audio is silence (peak {peak})"));
    }
    Ok(())
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join(" | ")
}

/// The (artist, title) status-json shows for `mount`.
async fn status_titles(addr: SocketAddr, mount: &str) -> Option<(Option<String>, Option<String>)> {
    let s = status_json_source(addr, mount).await?;
    Some((json_text(&s, "artist"), json_text(&s, "title")))
}

/// A playlist or chained-Ogg source: over a few tracks, status-json, ICY (MP3) and the Ogg
/// comment headers (Ogg) must each show at least two different tracks, with icecast2's
/// fields (Ogg: `title` is the TITLE tag alone, `artist` the ARTIST tag).
async fn follow_tracks(
    case: &SourceCase,
    srv: &common::TestServer,
    mount: &str,
    tracks: &[Track],
    watcher: &TitleWatcher,
) -> Vec<String> {
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(media::TRACK_SECONDS as u64 * 3 + 4);
    let mut json_seen: Vec<(Option<String>, Option<String>)> = Vec::new();
    let which_track = |artist: &Option<String>, title: &Option<String>| -> Option<usize> {
        let t = title.as_deref().unwrap_or("");
        tracks
            .iter()
            .position(|k| t.contains(&k.title))
            .filter(|&i| {
                // The artist must be there too, in `artist` or joined into `title`.
                artist.as_deref() == Some(tracks[i].artist.as_str())
                    || t.contains(&tracks[i].artist)
            })
    };
    loop {
        if let Some(pair) = status_titles(srv.addr, mount).await {
            if json_seen.last() != Some(&pair) {
                json_seen.push(pair);
            }
        }
        let distinct = |v: Vec<usize>| {
            let mut v = v;
            v.sort();
            v.dedup();
            v.len()
        };
        let json_tracks = distinct(
            json_seen
                .iter()
                .filter_map(|(a, t)| which_track(a, t))
                .collect(),
        );
        let log = watcher.log();
        let stream_tracks = stream_tracks(case, &log, tracks);
        if json_tracks >= 2 && distinct(stream_tracks.clone()) >= 2 {
            break;
        }
        if Instant::now() > deadline {
            if json_tracks < 2 {
                errors.push(format!(
                    "status-json titles did not follow the tracks: saw {json_seen:?} while the source played {:?}",
                    tracks.iter().map(|t| &t.title).collect::<Vec<_>>()
                ));
            }
            if distinct(stream_tracks) < 2 {
                errors.push(if case.format.is_ogg() {
                    format!(
                        "the listener's Ogg stream did not carry the tracks' tags: comment headers seen {:?}",
                        log.ogg
                    )
                } else {
                    format!(
                        "ICY titles did not follow the tracks: StreamTitles seen {:?}",
                        log.icy
                    )
                });
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // icecast2's fields for Ogg: the TITLE tag alone in `title`, ARTIST in `artist`.
    if case.format.is_ogg() {
        for (artist, title) in &json_seen {
            if let Some(i) = which_track(artist, title) {
                let want = (
                    Some(tracks[i].artist.clone()),
                    Some(tracks[i].title.clone()),
                );
                if (artist.clone(), title.clone()) != want {
                    errors.push(format!(
                        "status-json fields for an Ogg track: artist {artist:?}, title {title:?}; icecast2 reports artist {:?}, title {:?}",
                        want.0, want.1
                    ));
                    break;
                }
            }
        }
    }
    errors
}

/// Which tracks (indices) the listener's stream showed: ICY titles for MP3, Ogg comment
/// headers for Ogg.
fn stream_tracks(case: &SourceCase, log: &WatchLog, tracks: &[Track]) -> Vec<usize> {
    if case.format.is_ogg() {
        log.ogg
            .iter()
            .filter_map(|(_, t)| {
                let t = t.as_deref()?;
                tracks.iter().position(|k| t.contains(&k.title))
            })
            .collect()
    } else {
        log.icy
            .iter()
            .filter_map(|t| tracks.iter().position(|k| t.contains(&k.title)))
            .collect()
    }
}

/// Set two titles in turn with `/admin/metadata`; each must reach status-json, and the
/// listener (ICY for MP3; a new comment header for Vorbis, as icecast2 sends).
async fn follow_admin(
    case: &SourceCase,
    srv: &common::TestServer,
    mount: &str,
    watcher: &TitleWatcher,
) -> Vec<String> {
    let mut errors = Vec::new();
    for n in 1..=2 {
        let song = format!("Matrix Artist - Admin Song {n}");
        if let Err(e) = admin_metadata(srv.addr, mount, &song).await {
            errors.push(format!("/admin/metadata song={song:?}: {e}"));
            continue;
        }
        let deadline = Instant::now() + TITLE_TIMEOUT;
        let (mut json_ok, mut stream_ok) = (false, false);
        let mut last = None;
        while Instant::now() < deadline && !(json_ok && stream_ok) {
            if !json_ok {
                last = status_titles(srv.addr, mount).await;
                json_ok = last
                    .as_ref()
                    .is_some_and(|(_, t)| t.as_deref().is_some_and(|t| t.contains(&song)));
            }
            if !stream_ok {
                let log = watcher.log();
                stream_ok = if case.format.is_ogg() {
                    log.ogg
                        .iter()
                        .any(|(_, t)| t.as_deref().is_some_and(|t| song.contains(t)))
                } else {
                    log.icy.iter().any(|t| t == &song)
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !json_ok {
            errors.push(format!(
                "status-json did not follow /admin/metadata to {song:?}: (artist, title) {last:?}"
            ));
        }
        if !stream_ok {
            let log = watcher.log();
            errors.push(if case.format.is_ogg() {
                format!(
                    "no new Vorbis comment header carrying {song:?} after /admin/metadata (icecast2 sends one): seen {:?}",
                    log.ogg
                )
            } else {
                format!(
                    "ICY did not follow /admin/metadata to {song:?}: StreamTitles seen {:?}",
                    log.icy
                )
            });
        }
    }
    errors
}

/// ices2 stdinpcm: rewrite its metadata file and send SIGUSR1, twice; each new title must
/// reach status-json and the listener's stream (a new chain with the new tags).
async fn follow_signal(
    _case: &SourceCase,
    srv: &common::TestServer,
    mount: &str,
    file: &std::path::Path,
    source: &Proc,
    watcher: &TitleWatcher,
) -> Vec<String> {
    let mut errors = Vec::new();
    for n in 1..=2 {
        let title = format!("Signal Title {n}");
        if let Err(e) = std::fs::write(file, format!("artist=Signal Artist\ntitle={title}\n")) {
            errors.push(format!("write metadata file: {e}"));
            continue;
        }
        let kill = Command::new("kill")
            .args(["-USR1", &source.pid().to_string()])
            .status();
        if !kill.is_ok_and(|s| s.success()) {
            errors.push("could not send SIGUSR1 to ices2".into());
            continue;
        }
        let deadline = Instant::now() + TITLE_TIMEOUT;
        let (mut json, mut stream) = (None, false);
        while Instant::now() < deadline {
            json = status_titles(srv.addr, mount).await;
            stream = watcher
                .log()
                .ogg
                .iter()
                .any(|(_, t)| t.as_deref() == Some(title.as_str()));
            let json_ok = json.as_ref().is_some_and(|(a, t)| {
                t.as_deref() == Some(title.as_str()) && a.as_deref() == Some("Signal Artist")
            });
            if json_ok && stream {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let json_ok = json.as_ref().is_some_and(|(a, t)| {
            t.as_deref() == Some(title.as_str()) && a.as_deref() == Some("Signal Artist")
        });
        if !json_ok {
            errors.push(format!(
                "status-json after SIGUSR1 with title {title:?}: (artist, title) {json:?}; icecast2 reports artist \"Signal Artist\", title {title:?}"
            ));
        }
        if !stream {
            errors.push(format!(
                "the listener's stream never carried a comment header with TITLE={title}: seen {:?}",
                watcher.log().ogg
            ));
        }
    }
    errors
}

/// `/admin/metadata?mode=updinfo&song=…` with the source credentials, as source clients do.
async fn admin_metadata(addr: SocketAddr, mount: &str, song: &str) -> Result<(), String> {
    let req = format!(
        "GET /admin/metadata?mount={}&mode=updinfo&charset=UTF-8&song={} HTTP/1.0\r\n{}\r\n",
        floecast::http::request::percent_encode(mount),
        floecast::http::request::percent_encode(song),
        common::SOURCE
    );
    let reply = common::exchange(addr, req.as_bytes(), Duration::from_secs(5)).await;
    let (status, _, body) = common::split_reply(&reply);
    if status == 200 && body.contains("Metadata update successful") {
        Ok(())
    } else {
        Err(format!("status {status}: {}", body.trim()))
    }
}

// ---------------------------------------------------------------------------------------------
// Players

/// A mount family every player should play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Mp3,
    Vorbis,
    Opus,
    Flac,
    Theora,
    WebmVp8,
}

impl Family {
    fn mount(self) -> &'static str {
        match self {
            Family::Mp3 => "/play.mp3",
            Family::Vorbis => "/play.ogg",
            Family::Opus => "/play.opus",
            Family::Flac => "/play.flac.ogg",
            Family::Theora => "/play.ogv",
            Family::WebmVp8 => "/play.webm",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Family::Mp3 => Kind::PinkMp3,
            Family::Vorbis => Kind::PinkVorbis,
            Family::Opus => Kind::PinkOpus,
            Family::Flac => Kind::PinkFlac,
            Family::Theora => Kind::TheoraVorbis,
            Family::WebmVp8 => Kind::WebmVp8,
        }
    }

    /// ffmpeg's `-content_type` and muxer to push it with.
    fn push_args(self) -> (&'static str, &'static str) {
        match self {
            Family::Mp3 => ("audio/mpeg", "mp3"),
            Family::Vorbis | Family::Flac => ("application/ogg", "ogg"),
            Family::Opus => ("audio/ogg", "ogg"),
            Family::Theora => ("video/ogg", "ogg"),
            Family::WebmVp8 => ("video/webm", "webm"),
        }
    }
}

const ALL_FAMILIES: &[Family] = &[
    Family::Mp3,
    Family::Vorbis,
    Family::Opus,
    Family::Flac,
    Family::Theora,
    Family::WebmVp8,
];

/// Which families a player is expected to play. Limits of the players themselves, seen the
/// same against icecast2: mpg123 plays only MPEG audio; ogg123 opens HTTP streams only with
/// its Vorbis module (FLAC and Opus work from files only); Chromium dropped Theora; VLC 3.0
/// mostly stops with "buffer deadlock prevented" when it joins an Ogg stream carrying Vorbis
/// or FLAC (the existing interop_vlc tests cover an early join; ffmpeg and mpv cover these);
/// mplayer stops after the first Cluster of a live (unsized) WebM stream, even from a
/// stream's start.
fn families_of(player: &str) -> Vec<Family> {
    match player {
        "mplayer" => vec![
            Family::Mp3,
            Family::Vorbis,
            Family::Opus,
            Family::Flac,
            Family::Theora,
        ],
        "mpg123" => vec![Family::Mp3],
        "ogg123" => vec![Family::Vorbis],
        "cvlc" => vec![Family::Mp3, Family::Opus, Family::WebmVp8],
        "chromium" => vec![
            Family::Mp3,
            Family::Vorbis,
            Family::Opus,
            Family::Flac,
            Family::WebmVp8,
        ],
        _ => ALL_FAMILIES.to_vec(),
    }
}

const PLAYERS: &[&str] = &[
    "ffmpeg", "mpv", "mplayer", "mpg123", "ogg123", "cvlc", "chromium",
];

/// The MP3 title set before the players start: players that show ICY titles must show it.
const PLAYER_TITLE: &str = "Player Artist - Player Title";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_player_plays_every_mount_family() {
    let test = "every_player_plays_every_mount_family";
    if !have_all(test, PLAYERS) {
        return;
    }
    let Some(vlc) = VlcRunner::detect(test) else {
        return;
    };
    let vlc = Arc::new(vlc);
    let srv = Arc::new(common::start(common::test_config()).await);
    let tmp = Arc::new(TempDir::new("matrix-players"));
    let mut feeders = Vec::new();
    for family in ALL_FAMILIES {
        let cmd = push_command(srv.addr, *family);
        let log = tmp.join(&format!("feed{}.log", family.mount().replace('/', "-")));
        feeders.push(Proc::spawn("ffmpeg feeder", cmd, log));
    }
    for (family, feeder) in ALL_FAMILIES.iter().zip(feeders.iter_mut()) {
        interop_support::wait_live(&srv.app.server, family.mount(), feeder, LIVE_TIMEOUT).await;
    }
    admin_metadata(srv.addr, Family::Mp3.mount(), PLAYER_TITLE)
        .await
        .expect("set the MP3 title");
    // Let some seconds of each stream pass, so players join a running stream, not its start.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let gate = Arc::new(Semaphore::new(PARALLEL));
    // Chromium is heavy: one at a time.
    let chromium_gate = Arc::new(Semaphore::new(1));
    let mut tasks = Vec::new();
    for &player in PLAYERS {
        for family in families_of(player) {
            let (srv, tmp, gate, vlc) = (srv.clone(), tmp.clone(), gate.clone(), vlc.clone());
            let chromium_gate = chromium_gate.clone();
            tasks.push(tokio::spawn(async move {
                let _own = if player == "chromium" {
                    Some(chromium_gate.acquire_owned().await.expect("semaphore"))
                } else {
                    None
                };
                let _slot = gate.acquire_owned().await.expect("semaphore");
                let started = Instant::now();
                let url = format!("http://{}{}", srv.addr, family.mount());
                let result = play(player, family, &url, &tmp, "floecast", &vlc).await;
                eprintln!(
                    "player {player} / {family:?}: {} in {:.1}s",
                    if result.is_ok() { "ok" } else { "FAILED" },
                    started.elapsed().as_secs_f32()
                );
                (player, family, result)
            }));
        }
    }
    let n = tasks.len();
    let report = Report::default();
    let mut failed = Vec::new();
    for t in tasks {
        match t.await {
            Ok((player, family, Err(e))) => failed.push((player, family, e)),
            Ok(_) => {}
            Err(e) => report.fail("matrix", format!("a case panicked: {e}")),
        }
    }
    for (family, feeder) in ALL_FAMILIES.iter().zip(feeders.iter_mut()) {
        if let Some(status) = feeder.exited() {
            report.fail(
                &format!("feeder ffmpeg / {family:?}"),
                format!("exited ({status}): {}", tail(&feeder.log_text(), 10)),
            );
        }
    }
    // Each failure is replayed against icecast2 fed the same way, so the report says whether
    // icecast2 does better (a floecast bug) or the same (a limit of the player, or a bug both
    // share, which floecast must still fix where the issue says so).
    let reference = if failed.is_empty() {
        Vec::new()
    } else {
        replay_on_icecast2(test, &failed, &tmp, &vlc).await
    };
    for (i, (player, family, e)) in failed.iter().enumerate() {
        let on_icecast2 = match reference.get(i) {
            Some(Ok(())) => "icecast2 plays it".to_string(),
            Some(Err(r)) => format!("icecast2 fails too: {r}"),
            None => "not replayed on icecast2".to_string(),
        };
        report.fail(
            &format!("player {player} / {family:?}"),
            format!("{e}\n      [{on_icecast2}]"),
        );
    }
    report.finish("players", n);
}

/// Play each `failed` combination against icecast2, fed the same way by ffmpeg with the same
/// MP3 title; one result per combination, in order.
async fn replay_on_icecast2(
    test: &str,
    failed: &[(&'static str, Family, String)],
    tmp: &TempDir,
    vlc: &VlcRunner,
) -> Vec<Result<(), String>> {
    let Some(ice) = interop_support::Icecast2::start(test, "").await else {
        return Vec::new();
    };
    let mut feeders = Vec::new();
    for family in ALL_FAMILIES {
        let log = tmp.join(&format!("ice-feed{}.log", family.mount().replace('/', "-")));
        feeders.push(Proc::spawn(
            "ffmpeg feeder (icecast2)",
            push_command(ice.addr, *family),
            log,
        ));
    }
    for family in ALL_FAMILIES {
        common::wait_serving(ice.addr, family.mount(), LIVE_TIMEOUT, || ice.error_log()).await;
    }
    if let Err(e) = admin_metadata(ice.addr, Family::Mp3.mount(), PLAYER_TITLE).await {
        eprintln!("icecast2 refused the MP3 title: {e}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut results = Vec::new();
    for (player, family, _) in failed {
        let url = format!("http://{}{}", ice.addr, family.mount());
        let r = play(player, *family, &url, tmp, "icecast2", vlc).await;
        eprintln!(
            "player {player} / {family:?} on icecast2: {}",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        results.push(r);
    }
    results
}

/// ffmpeg encoding `family` live (media::live_args) and pushing it to `addr`.
fn push_command(addr: SocketAddr, family: Family) -> Command {
    let (ctype, muxer) = family.push_args();
    let url = format!("icecast://source:hackme@{addr}{}", family.mount());
    let mut args = vec!["-v".to_string(), "warning".to_string()];
    args.extend(media::live_args(family.kind()).expect("a live kind"));
    args.extend(["-content_type", ctype, "-f", muxer, &url].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    interop_support::ffmpeg(&args)
}

/// Lines of a player's output that report an error (ignoring harmless chatter).
fn error_lines(text: &str, patterns: &[&str]) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            patterns.iter().any(|p| lower.contains(p))
        })
        .map(|l| l.chars().take(200).collect())
        .take(5)
        .collect()
}

/// Play `url` with `player` for a few seconds, writing decoded audio into `dir` where the
/// player can; Ok when it ran without errors and decoded sound.
async fn play(
    player: &str,
    family: Family,
    url: &str,
    tmp: &TempDir,
    server: &str,
    vlc: &VlcRunner,
) -> Result<(), String> {
    let dir = tmp.join(&format!("{server}-{player}-{family:?}"));
    let _ = std::fs::create_dir_all(&dir);
    set_mode(&dir, 0o777);
    let dir = dir.as_path();
    let wav = dir.join("out.wav");
    let w = wav.to_str().expect("utf-8 path").to_string();
    let limit = Duration::from_secs(30);
    match player {
        "ffmpeg" => {
            let out = run(
                interop_support::ffmpeg(&[
                    "-v",
                    "error",
                    "-i",
                    url,
                    "-map",
                    "0:a",
                    // Count decoded samples, not stream timestamps: a joiner's first Ogg
                    // timestamps are guesses until the next granule position.
                    "-af",
                    "asetpts=N/SR/TB",
                    "-t",
                    "4",
                    "-ac",
                    "2",
                    "-ar",
                    "44100",
                    "-c:a",
                    "pcm_s16le",
                    "-y",
                    &w,
                ]),
                limit,
            )
            .await;
            if !out.success() || !out.stderr.is_empty() {
                return Err(format!(
                    "exit {:?}; errors: {}",
                    out.status,
                    first_lines(&out.stderr_text(), 6)
                ));
            }
            silence_check(&wav, 3.0)
        }
        "mpv" => {
            // `--length` counts stream time, which jumps when a joiner's first Ogg FLAC
            // timestamp was a guess: play for a wall-clock time and stop mpv with SIGTERM.
            let mut cmd = Command::new("mpv");
            cmd.args([
                "--no-config",
                "--vo=null",
                "--ao=pcm",
                "--audio-format=s16",
                "--audio-samplerate=44100",
                "--audio-channels=stereo",
                "--msg-level=all=info",
            ])
            .arg(format!("--ao-pcm-file={w}"))
            .arg(url)
            .env("HOME", dir);
            let out = run_for(cmd, Decoded::pcm(&wav, 2.5)).await;
            let text = format!("{}{}", out.stdout_text(), out.stderr_text());
            // "Invalid audio PTS" is mpv noticing that guess (on icecast2 too); it plays on.
            let errors: Vec<String> =
                error_lines(&text, &["error", "failed", "corrupt", "invalid"])
                    .into_iter()
                    .filter(|l| !l.contains("Invalid audio PTS"))
                    .collect();
            if !errors.is_empty() {
                return Err(format!("exit {:?}; errors: {errors:?}", out.status));
            }
            if family == Family::Mp3 && !text.contains(&format!("icy-title: {PLAYER_TITLE}")) {
                return Err(format!(
                    "mpv did not show the ICY title {PLAYER_TITLE:?}: {}",
                    first_lines(&text, 12)
                ));
            }
            silence_check(&wav, 2.5)
        }
        "mplayer" => {
            // `-endpos` is a stream position, and a joiner's Ogg positions start wherever the
            // stream is: play for a wall-clock time instead and stop mplayer with SIGTERM.
            let mut cmd = Command::new("mplayer");
            cmd.args([
                "-noconfig",
                "all",
                "-nolirc",
                "-nocache",
                "-vo",
                "null",
                "-vc",
                "null",
            ])
            .args(["-af", "format=s16le,resample=44100,channels=2"])
            .args(["-ao", &format!("pcm:fast:file={w}")])
            .arg(url)
            .env("HOME", dir);
            let out = run_for(cmd, Decoded::pcm(&wav, 2.0)).await;
            let text = format!("{}{}", out.stdout_text(), out.stderr_text());
            // mplayer's SIGTERM interrupts a read ("Interrupted system call"), it tries to
            // seek back in every stream it opens, and its own Ogg demuxer hands the Opus
            // decoder a bad first packet on any join (icecast2 too): none stops playback,
            // which the decoded sound checks.
            let errors: Vec<String> = error_lines(
                &text,
                &[
                    "error",
                    "failed",
                    "cannot",
                    "no stream found",
                    "not recognized",
                ],
            )
            .into_iter()
            .filter(|l| {
                let opus_join =
                    family == Family::Opus && l.contains("Error parsing the packet header");
                !(l.contains("Interrupted system call")
                    || l.contains("Cannot seek backward")
                    || opus_join)
            })
            .collect();
            if !errors.is_empty() {
                return Err(format!("errors: {errors:?}"));
            }
            if family == Family::Mp3 && !text.contains(&format!("StreamTitle='{PLAYER_TITLE}';")) {
                return Err(format!(
                    "mplayer did not show the ICY title {PLAYER_TITLE:?}: {}",
                    first_lines(&text, 12)
                ));
            }
            silence_check(&wav, 2.0)
        }
        "mpg123" => {
            // 150 frames of 1152 samples: about 4 s.
            let mut cmd = Command::new("mpg123");
            cmd.args(["-w", &w, "-n", "150", url]);
            let out = run(cmd, limit).await;
            let text = out.stderr_text();
            let errors = error_lines(&text, &["error", "warning", "failed", "invalid"]);
            if !out.success() || !errors.is_empty() {
                return Err(format!("exit {:?}; errors: {errors:?}", out.status));
            }
            if !text.contains(PLAYER_TITLE) {
                return Err(format!(
                    "mpg123 did not show the ICY title {PLAYER_TITLE:?}: {}",
                    first_lines(&text, 12)
                ));
            }
            silence_check(&wav, 3.0)
        }
        "ogg123" => {
            // `--end` counts stream time, which for a joiner starts wherever the stream is:
            // play for a wall-clock time into a raw PCM file (no header to finish) instead.
            let raw = dir.join("out.raw");
            let mut cmd = Command::new("ogg123");
            cmd.args(["-q", "-d", "raw", "-f"]).arg(&raw).arg(url);
            let out = run_for(cmd, Decoded::pcm(&raw, 2.0)).await;
            let text = format!("{}{}", out.stdout_text(), out.stderr_text());
            let errors = error_lines(&text, &["error", "corrupt", "failed"]);
            if !errors.is_empty() {
                return Err(format!("exit {:?}; errors: {errors:?}", out.status));
            }
            let pcm = std::fs::read(&raw).map_err(|e| format!("no decoded output: {e}"))?;
            raw_silence_check(&pcm, 2.0)
        }
        "cvlc" => {
            // Decode through VLC's stream output into a WAV file: its file audio output
            // (`--aout=afile`) runs dry on Opus joins.
            let home = TempDir::new("matrix-vlc-player");
            let wav = home.join("out.wav");
            let sout = format!(
                "#transcode{{vcodec=none,acodec=s16l,channels=2,samplerate=44100}}:std{{access=file,mux=wav,dst={}}}",
                wav.display()
            );
            let args = [
                "--play-and-exit",
                "--run-time=5",
                "--aout=dummy",
                "--sout",
                &sout,
                url,
            ];
            let out = run(vlc.command(&home, &args), limit).await;
            let text = format!("{}{}", out.stdout_text(), out.stderr_text());
            // VLC reports its missing D-Bus and hotkey interfaces as errors: not ours.
            let errors: Vec<String> = error_lines(&text, &[" error:", "corrupt", "deadlock"])
                .into_iter()
                .filter(|l| !l.contains("interface"))
                .collect();
            if out.status.is_none() || !errors.is_empty() {
                return Err(format!("exit {:?}; errors: {errors:?}", out.status));
            }
            silence_check(&wav, 2.0)
        }
        "chromium" => chromium_plays(url, dir).await,
        other => Err(format!("unknown player {other}")),
    }
}

/// Headless Chromium plays `url` in an `<audio>` element (a `<video>` for WebM) for
/// [`CHROMIUM_PLAY_SECONDS`] of real time: it must reach `playing`, advance `currentTime` by
/// at least 2 s and raise no media error. The page reports its state twice a second to a
/// local HTTP server ([`Reports`]); `--dump-dom` is no use here, since its virtual time does
/// not wait for a live stream.
async fn chromium_plays(url: &str, dir: &std::path::Path) -> Result<(), String> {
    let tag = if url.ends_with(".webm") {
        "video"
    } else {
        "audio"
    };
    let reports = Reports::start().await;
    let page = dir.join("player.html");
    std::fs::write(
        &page,
        PLAYER_PAGE
            .replace("@TAG@", tag)
            .replace("@URL@", url)
            .replace("@REPORT@", &format!("http://{}/report", reports.addr)),
    )
    .map_err(|e| format!("write page: {e}"))?;
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
    ])
    .args([
        "--autoplay-policy=no-user-gesture-required",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("chromium did not start: {e}"))?;
    // Stop early once it has played enough, or on a media error.
    let deadline = Instant::now() + Duration::from_secs(CHROMIUM_PLAY_SECONDS);
    let mut last = String::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = reports.last();
        if last.contains("ERROR") || played(&last) >= 2.5 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromium exited ({status}); last report: {last:?}"));
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    if last.is_empty() {
        return Err("the page never reported (Chromium did not load it)".into());
    }
    if last.contains("ERROR") || played(&last) < 2.0 {
        return Err(format!("<{tag}> element: {last}"));
    }
    Ok(())
}

/// Seconds of `played=` in a page report.
fn played(report: &str) -> f64 {
    report
        .split("played=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// At most this much real time for Chromium to start and play.
const CHROMIUM_PLAY_SECONDS: u64 = 15;

/// A local HTTP server keeping the last report a page sent (`GET /report?<text>`).
struct Reports {
    addr: SocketAddr,
    last: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reports {
    async fn start() -> Reports {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind report server");
        let addr = listener.local_addr().expect("local addr");
        let last = Arc::new(Mutex::new(String::new()));
        let keep = last.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let (head, _) = common::read_head(&mut s, Duration::from_secs(5)).await;
                    if let Some(q) = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|p| p.split_once('?'))
                    {
                        *keep.lock().expect("report") =
                            String::from_utf8_lossy(&floecast::http::percent_decode(q.1))
                                .into_owned();
                    }
                    let _ = tokio::io::AsyncWriteExt::write_all(
                        &mut s,
                        b"HTTP/1.0 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
                    )
                    .await;
                });
            }
        });
        Reports { addr, last, task }
    }

    fn last(&self) -> String {
        self.last.lock().expect("report").clone()
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The page Chromium loads: the media element, and a report of its state every 500 ms
/// (`played` counts seconds since the first `playing` event).
const PLAYER_PAGE: &str = r#"<!doctype html><html><body>
<@TAG@ id="m" autoplay muted src="@URL@"></@TAG@>
<script>
const m = document.getElementById('m');
const log = []; let start = null;
m.addEventListener('error', () => log.push('ERROR ' + (m.error ? m.error.code + ' ' + m.error.message : '?')));
m.addEventListener('playing', () => { if (start === null) start = m.currentTime; log.push('playing'); });
m.play().catch(e => log.push('play() rejected: ' + e));
setInterval(() => {
  const played = start === null ? 0 : m.currentTime - start;
  const text = 'played=' + played.toFixed(2) + ' readyState=' + m.readyState + ' events=' + log.join(', ');
  fetch('@REPORT@?' + encodeURIComponent(text), {mode: 'no-cors'}).catch(() => {});
}, 500);
</script></body></html>
"#;

/// How long a player writing decoded sound may keep playing past [`PLAY`] for its output to
/// reach [`Decoded::want`]: a loaded CI machine starts a player seconds late (mpv once decoded
/// 1.5 s of WebM in 5 s, on icecast2 too), and a wall-clock cut alone then fails the case.
const PLAY_LIMIT: Duration = Duration::from_secs(20);

/// The least wall-clock time a player plays, however soon its output holds enough.
const PLAY: Duration = Duration::from_secs(5);

/// The file a player decodes into and the size it must reach before it is stopped.
struct Decoded<'a> {
    file: &'a std::path::Path,
    want: u64,
}

impl<'a> Decoded<'a> {
    /// `seconds` of 16-bit stereo PCM at 44.1 kHz, plus half a second and a WAV header: the
    /// check afterwards wants `seconds`.
    fn pcm(file: &'a std::path::Path, seconds: f32) -> Self {
        let want = ((seconds + 0.5) * 44_100.0 * 4.0) as u64 + 44;
        Self { file, want }
    }

    fn holds_enough(&self) -> bool {
        std::fs::metadata(self.file).is_ok_and(|m| m.len() >= self.want)
    }
}

/// Run `cmd` for [`PLAY`] of wall-clock time, and on until `output` holds enough (at most
/// [`PLAY_LIMIT`]), then stop it with SIGTERM (so it finishes its output file) and collect what
/// it printed; killed if it does not stop within 5 s.
async fn run_for(cmd: Command, output: Decoded<'_>) -> interop_support::Output {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return interop_support::Output {
                status: None,
                stdout: Vec::new(),
                stderr: format!("cannot start: {e}").into_bytes(),
            };
        }
    };
    let collect = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut v = Vec::new();
            if let Some(mut p) = pipe {
                let _ = tokio::time::timeout(
                    Duration::from_secs(60),
                    tokio::io::AsyncReadExt::read_to_end(&mut p, &mut v),
                )
                .await;
            }
            v
        })
    };
    let out = collect(child.stdout.take().map(|p| Box::new(p) as _));
    let err = collect(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let exited = loop {
        let left = PLAY_LIMIT.saturating_sub(started.elapsed());
        if left.is_zero() || (started.elapsed() >= PLAY && output.holds_enough()) {
            break None;
        }
        let step = left.min(Duration::from_millis(250));
        if let Ok(s) = tokio::time::timeout(step, child.wait()).await {
            break Some(s.ok());
        }
    };
    let status = match exited {
        Some(s) => s,
        None => {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(s) => s.ok(),
                Err(_) => {
                    let _ = child.start_kill();
                    child.wait().await.ok()
                }
            }
        }
    };
    let grab = |h: tokio::task::JoinHandle<Vec<u8>>| async move {
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default()
    };
    interop_support::Output {
        status,
        stdout: grab(out).await,
        stderr: grab(err).await,
    }
}
