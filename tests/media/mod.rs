//! Realistic test media, generated with ffmpeg at test time into one temp dir per test run:
//! pink noise at the nominal bitrate (so encoders really spend their bits), tagged tracks and
//! their chained-Ogg concatenation, Theora+Vorbis and WebM (VP8/Vorbis, VP9/Opus) video.
//! Nothing here is committed; every file is made on first use and reused within the run.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::interop_support::{TempDir, ffmpeg, run};

/// Seconds of each looping media file (sources loop it with `-stream_loop -1`).
pub const LOOP_SECONDS: u32 = 20;
/// Seconds of each tagged track: short, so a title change comes within a few seconds.
pub const TRACK_SECONDS: u32 = 4;
/// How many tagged tracks a playlist (and a chained Ogg file) has.
pub const TRACKS: usize = 3;
/// How many times the chained Ogg file goes through its tracks.
pub const CHAIN_ROUNDS: usize = 5;

/// One kind of generated file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// MP3, 128 kbit/s CBR, 44.1 kHz stereo, no tags.
    PinkMp3,
    /// Ogg Vorbis, about 128 kbit/s.
    PinkVorbis,
    /// Ogg Opus, 96 kbit/s.
    PinkOpus,
    /// Ogg FLAC (noise barely compresses: about 1.2 Mbit/s).
    PinkFlac,
    /// Theora + Vorbis in Ogg, muxed by ffmpeg (320x240, 25 fps, ffmpeg's default GOP).
    TheoraVorbis,
    /// WebM VP8 + Vorbis, muxed by ffmpeg with its defaults.
    WebmVp8,
    /// WebM VP9 + Opus, muxed by ffmpeg with its defaults.
    WebmVp9,
    /// The [`TRACKS`] tagged Vorbis tracks concatenated, [`CHAIN_ROUNDS`] times over: a
    /// chained Ogg stream long enough for a test to watch its titles change.
    ChainedVorbis,
}

/// A tagged track of a playlist.
#[derive(Clone, Debug)]
pub struct Track {
    pub path: PathBuf,
    pub artist: String,
    pub title: String,
}

/// The artist and title of track `i` (0-based): distinct, so every change is visible.
pub fn track_tags(i: usize) -> (String, String) {
    (
        format!("Floe Artist {}", i + 1),
        format!("Pink Title {}", i + 1),
    )
}

/// The generated media of one test run, made lazily (each file once) in a temp dir.
pub struct Media {
    dir: TempDir,
    files: Mutex<HashMap<Kind, Arc<OnceCell<PathBuf>>>>,
    tracks: Mutex<HashMap<&'static str, Arc<OnceCell<Vec<Track>>>>>,
}

/// The pink-noise lavfi source (stereo after `-ac 2`): a spread spectrum, unlike a sine, so
/// the encoders produce frames of their nominal size.
fn pink(seconds: u32, seed: u32) -> String {
    format!("anoisesrc=color=pink:sample_rate=44100:amplitude=0.25:seed={seed}:duration={seconds}")
}

impl Media {
    pub fn new() -> Media {
        Media {
            dir: TempDir::new("media"),
            files: Mutex::default(),
            tracks: Mutex::default(),
        }
    }

    /// The directory everything is generated in (world-readable).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The file of `kind`, generated on first use.
    pub async fn get(&self, kind: Kind) -> PathBuf {
        let cell = self
            .files
            .lock()
            .expect("media lock")
            .entry(kind)
            .or_default()
            .clone();
        cell.get_or_init(|| self.generate(kind)).await.clone()
    }

    /// The tagged tracks of `format` (`"mp3"` or `"ogg"`, Vorbis), generated on first use.
    pub async fn tracks(&self, format: &'static str) -> Vec<Track> {
        let cell = self
            .tracks
            .lock()
            .expect("media lock")
            .entry(format)
            .or_default()
            .clone();
        cell.get_or_init(|| self.make_tracks(format)).await.clone()
    }

    /// A playlist file (one path per line, as ezstream, ices2 and liquidsoap read it) of the
    /// tracks of `format`.
    pub async fn playlist(&self, format: &'static str) -> PathBuf {
        let tracks = self.tracks(format).await;
        let path = self.dir.join(&format!("playlist-{format}.txt"));
        let text: String = tracks
            .iter()
            .map(|t| format!("{}\n", t.path.display()))
            .collect();
        fs::write(&path, text).expect("write playlist");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod playlist");
        path
    }

    async fn make_tracks(&self, format: &'static str) -> Vec<Track> {
        let jobs = (0..TRACKS).map(|i| async move {
            let (artist, title) = track_tags(i);
            let path = self.dir.join(&format!("track{}.{format}", i + 1));
            let src = pink(TRACK_SECONDS, 100 + i as u32);
            let artist_tag = format!("artist={artist}");
            let title_tag = format!("title={title}");
            let serial = format!("{}", 1000 * (i + 1));
            let mut args = vec!["-f", "lavfi", "-i", &src, "-ac", "2"];
            match format {
                "mp3" => args.extend_from_slice(&[
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    "128k",
                    "-id3v2_version",
                    "3",
                ]),
                "ogg" => args.extend_from_slice(&[
                    "-c:a",
                    "libvorbis",
                    "-b:a",
                    "128k",
                    // Distinct serial numbers, as separate encodes of a real playlist have.
                    "-serial_offset",
                    &serial,
                ]),
                other => panic!("no tracks of format {other}"),
            }
            args.extend_from_slice(&["-metadata", &artist_tag, "-metadata", &title_tag]);
            encode(&path, &args).await;
            Track {
                path,
                artist,
                title,
            }
        });
        futures_util::future::join_all(jobs).await
    }

    async fn generate(&self, kind: Kind) -> PathBuf {
        let s = LOOP_SECONDS;
        let (name, args): (&str, Vec<String>) = match kind {
            Kind::PinkMp3 => (
                "pink.mp3",
                audio(s, &["-c:a", "libmp3lame", "-b:a", "128k"]),
            ),
            Kind::PinkVorbis => ("pink.ogg", audio(s, &["-c:a", "libvorbis", "-b:a", "128k"])),
            Kind::PinkOpus => ("pink.opus", audio(s, &["-c:a", "libopus", "-b:a", "96k"])),
            Kind::PinkFlac => ("pink.oga", audio(s, &["-c:a", "flac", "-f", "ogg"])),
            // The size and quality of the lab set-up that showed break 1 (big Theora frames:
            // few packets per page, so VLC's muxer rarely starts a page with a keyframe).
            Kind::TheoraVorbis => (
                "video.ogv",
                video(
                    s,
                    "640x360",
                    &["-c:v", "libtheora", "-q:v", "6", "-c:a", "libvorbis"],
                ),
            ),
            Kind::WebmVp8 => (
                "vp8.webm",
                video(
                    s,
                    "320x240",
                    &["-c:v", "libvpx", "-b:v", "400k", "-c:a", "libvorbis"],
                ),
            ),
            // The encoder speed options only make the encode cheap on a shared CI machine;
            // the WebM muxing (clusters, cues) is ffmpeg's default.
            Kind::WebmVp9 => (
                "vp9.webm",
                video(
                    s,
                    "320x240",
                    &[
                        "-c:v",
                        "libvpx-vp9",
                        "-b:v",
                        "400k",
                        "-deadline",
                        "realtime",
                        "-cpu-used",
                        "8",
                        "-c:a",
                        "libopus",
                    ],
                ),
            ),
            Kind::ChainedVorbis => {
                let tracks = self.tracks("ogg").await;
                let path = self.dir.join("chained.ogg");
                let mut all = Vec::new();
                for _ in 0..CHAIN_ROUNDS {
                    for t in &tracks {
                        all.extend(fs::read(&t.path).expect("read track"));
                    }
                }
                fs::write(&path, all).expect("write chained Ogg");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
                return path;
            }
        };
        let path = self.dir.join(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        encode(&path, &args).await;
        path
    }
}

/// ffmpeg input and codec arguments for a live, real-time (`-re`) encode of `kind` from
/// generated pink noise (and a moving test picture for video), as a radio or a webcast
/// encodes: what a listener joining at any moment gets in the wild. `None` for kinds that
/// only exist as files (chained Ogg).
pub fn live_args(kind: Kind) -> Option<Vec<String>> {
    let codec: &[&str] = match kind {
        Kind::PinkMp3 => &["-c:a", "libmp3lame", "-b:a", "128k"],
        Kind::PinkVorbis => &["-c:a", "libvorbis", "-b:a", "128k"],
        Kind::PinkOpus => &["-c:a", "libopus", "-b:a", "96k"],
        Kind::PinkFlac => &["-c:a", "flac"],
        Kind::TheoraVorbis => &["-c:v", "libtheora", "-q:v", "6", "-c:a", "libvorbis"],
        Kind::WebmVp8 => &[
            "-c:v",
            "libvpx",
            "-b:v",
            "400k",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libvorbis",
        ],
        Kind::WebmVp9 => &[
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "400k",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
        ],
        Kind::ChainedVorbis => return None,
    };
    let video = matches!(kind, Kind::TheoraVorbis | Kind::WebmVp8 | Kind::WebmVp9);
    let mut v: Vec<String> = Vec::new();
    if video {
        v.extend(["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"].map(String::from));
    }
    v.extend(["-re", "-f", "lavfi", "-i"].map(String::from));
    v.push("anoisesrc=color=pink:sample_rate=44100:amplitude=0.25:seed=11".to_string());
    v.extend(["-ac", "2"].map(String::from));
    v.extend(codec.iter().map(|s| s.to_string()));
    Some(v)
}

impl Default for Media {
    fn default() -> Self {
        Self::new()
    }
}

/// ffmpeg input and codec arguments for `seconds` of stereo pink noise.
fn audio(seconds: u32, codec: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["-f", "lavfi", "-i", &pink(seconds, 7), "-ac", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(codec.iter().map(|s| s.to_string()));
    v
}

/// ffmpeg input and codec arguments for `seconds` of a moving test picture of `size` (25
/// frames per second) with pink noise.
fn video(seconds: u32, size: &str, codec: &[&str]) -> Vec<String> {
    let t = seconds.to_string();
    let picture = format!("testsrc=size={size}:rate=25");
    let mut v: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        &picture,
        "-f",
        "lavfi",
        "-i",
        &pink(seconds, 9),
        "-t",
        &t,
        "-ac",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(codec.iter().map(|s| s.to_string()));
    v
}

/// Run ffmpeg with `args` writing `path` (world-readable, for VLC and liquidsoap, which run
/// as an unprivileged user).
async fn encode(path: &std::path::Path, args: &[&str]) {
    let p = path.to_str().expect("utf-8 path");
    let mut all = vec!["-v", "error"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-y", p]);
    let out = run(ffmpeg(&all), Duration::from_secs(120)).await;
    assert!(
        out.success(),
        "ffmpeg could not make {p}: {}",
        out.describe()
    );
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod media");
}
