//! Admin title updates on an Ogg Vorbis mount reach listeners in the stream, as icecast2
//! 2.4.4 sends them (spec §2.5, wire-captures quirk 14): the listener's stream ends and a new
//! chain begins whose comment header carries the new TITLE / ARTIST. Real players connected
//! across the updates (ffmpeg, mpv, mplayer, ogg123) keep playing and ogg123 shows the new
//! titles; a late joiner starts on the new chain.

mod common;
mod interop_support;
mod media;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use interop_support::{
    OggPage, Output, Proc, TempDir, TitleWatcher, have_all, ogg_pages, raw_get_ogg, run,
    vorbis_comment_tags, wait_live,
};
use media::Kind;

const MOUNT: &str = "/admin.ogg";
/// `song=` alone: the whole line becomes TITLE, and the source's ARTIST goes.
const SONG: &str = "Admin Artist - Admin Song";
const ARTIST: &str = "Second Artist";
const TITLE: &str = "Second Title";
/// Wall-clock time each player listens; the updates come 2.5 s and 5 s in.
const PLAY: Duration = Duration::from_secs(12);
/// Audio a player must have decoded: with no burst it begins at the player's connection,
/// so this much reaches past the second update (and the page it waits for).
const PLAYED: f32 = 7.5;
/// A 0.25 s stretch of the pink-noise source decodes with a peak well above this.
const NOT_SILENT: i32 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_titles_reach_vorbis_players_in_the_stream() {
    const TEST: &str = "admin_titles_reach_vorbis_players_in_the_stream";
    if !have_all(TEST, &["ffmpeg", "mpv", "mplayer", "ogg123"]) {
        return;
    }
    let tmp = TempDir::new("ogg-admin");
    let mut config = common::test_config();
    // No burst: what a player decodes begins when it connects (see PLAYED).
    config.limits.burst_size = 0;
    let srv = common::start(config).await;
    let mut source = vorbis_source(srv.addr, &tmp);
    wait_live(&srv.app.server, MOUNT, &mut source, Duration::from_secs(15)).await;
    let url = format!("http://{}{MOUNT}", srv.addr);

    // Everyone connects before the first update and listens across both.
    let watcher = TitleWatcher::start(srv.addr, MOUNT).await;
    let raw = raw_get_ogg(srv.addr, MOUNT, usize::MAX, PLAY);
    let players = async {
        tokio::join!(
            ffmpeg_plays(&url, &tmp),
            mpv_plays(&url, &tmp),
            mplayer_plays(&url, &tmp),
            ogg123_plays(&url, &tmp),
        )
    };
    let updates = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        admin_update(srv.addr, &format!("song={}", enc(SONG))).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        admin_update(
            srv.addr,
            &format!("artist={}&title={}", enc(ARTIST), enc(TITLE)),
        )
        .await;
    };
    let ((ffmpeg, mpv, mplayer, ogg123), (_, body), ()) = tokio::join!(players, raw, updates);

    // The listener's stream carries both titles, each in a new comment header.
    let log = watcher.log();
    assert!(
        log.error.is_none(),
        "listener stream broken: {:?}",
        log.error
    );
    for want in [(None, Some(SONG)), (Some(ARTIST), Some(TITLE))] {
        let want = (want.0.map(String::from), want.1.map(String::from));
        assert!(
            log.ogg.contains(&want),
            "no comment header with (ARTIST, TITLE) {want:?} reached the listener: {:?}",
            log.ogg
        );
    }
    // ... as well-formed chained Ogg: each old stream ends before the next begins.
    check_chains(&ogg_pages(&body), 3);

    let failures: Vec<String> = [
        ("ffmpeg", ffmpeg),
        ("mpv", mpv),
        ("mplayer", mplayer),
        ("ogg123", ogg123),
    ]
    .into_iter()
    .filter_map(|(player, r)| r.err().map(|e| format!("{player}: {e}")))
    .collect();
    assert!(
        failures.is_empty(),
        "players across the admin updates:\n  {}",
        failures.join("\n  ")
    );

    // A listener joining now starts on the last new chain and decodes it.
    let (_, late) = raw_get_ogg(srv.addr, MOUNT, 3, Duration::from_secs(5)).await;
    let pages = ogg_pages(&late);
    assert!(
        pages.len() >= 3 && pages[0].bos(),
        "late joiner got {pages:?}"
    );
    let comment = pages[1]
        .body
        .strip_prefix(b"\x03vorbis")
        .expect("comment header");
    assert_eq!(
        vorbis_comment_tags(comment),
        (Some(ARTIST.to_string()), Some(TITLE.to_string()))
    );
    interop_support::assert_decodes(&url, 2).await;
    source.assert_running();
}

/// ffmpeg (the library under mpv, Chromium and many players) decodes 9 s of samples from
/// before the first update to after the second, without an error.
async fn ffmpeg_plays(url: &str, tmp: &TempDir) -> Result<(), String> {
    let pcm = tmp.join("ffmpeg.raw");
    let out = run(
        interop_support::ffmpeg(&[
            "-v",
            "error",
            "-i",
            url,
            // Count decoded samples: each new chain's timestamps start again near 0.
            "-af",
            "asetpts=N/SR/TB",
            "-t",
            "9",
            "-ac",
            "2",
            "-ar",
            "44100",
            "-f",
            "s16le",
            "-y",
            pcm.to_str().expect("utf-8 path"),
        ]),
        PLAY + Duration::from_secs(10),
    )
    .await;
    if !out.success() || !out.stderr.is_empty() {
        return Err(format!("exit {:?}: {}", out.status, out.stderr_text()));
    }
    sounds_throughout(&pcm, 9.0)
}

async fn mpv_plays(url: &str, tmp: &TempDir) -> Result<(), String> {
    let pcm = tmp.join("mpv.raw");
    let mut cmd = Command::new("mpv");
    cmd.args([
        "--no-config",
        "--vo=null",
        "--ao=pcm",
        "--ao-pcm-waveheader=no",
        "--audio-format=s16",
        "--audio-samplerate=44100",
        "--audio-channels=stereo",
    ])
    .arg(format!("--ao-pcm-file={}", pcm.display()))
    .arg(url)
    .env("HOME", tmp.path());
    let out = run(cmd, PLAY).await;
    no_errors(&out, &["error", "failed", "corrupt", "invalid"], &[])?;
    sounds_throughout(&pcm, PLAYED)
}

async fn mplayer_plays(url: &str, tmp: &TempDir) -> Result<(), String> {
    let pcm = tmp.join("mplayer.raw");
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
    .args([
        "-ao",
        &format!("pcm:fast:nowaveheader:file={}", pcm.display()),
    ])
    .arg(url)
    .env("HOME", tmp.path());
    let out = run(cmd, PLAY).await;
    // It tries to seek back in every stream it opens; being stopped interrupts its read.
    no_errors(
        &out,
        &["error", "failed", "cannot", "unknown stream"],
        &["Cannot seek backward", "Interrupted system call"],
    )?;
    sounds_throughout(&pcm, PLAYED)
}

/// ogg123 (libvorbisfile) prints each chain's comments: the new titles must appear.
async fn ogg123_plays(url: &str, tmp: &TempDir) -> Result<(), String> {
    let pcm = tmp.join("ogg123.raw");
    let mut cmd = Command::new("ogg123");
    cmd.args(["-d", "raw", "-f"]).arg(&pcm).arg(url);
    let out = run(cmd, PLAY).await;
    no_errors(&out, &["error", "corrupt", "failed"], &[])?;
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    for shown in [
        format!("Title: {SONG}"),
        format!("Artist: {ARTIST}"),
        format!("Title: {TITLE}"),
    ] {
        if !text.contains(&shown) {
            return Err(format!("did not show {shown:?}: {}", tail(&text)));
        }
    }
    sounds_throughout(&pcm, PLAYED)
}

/// The ffmpeg source: live pink noise as Ogg Vorbis.
fn vorbis_source(addr: SocketAddr, tmp: &TempDir) -> Proc {
    let url = format!("icecast://source:hackme@{addr}{MOUNT}");
    let mut args = vec!["-v".to_string(), "warning".to_string()];
    args.extend(media::live_args(Kind::PinkVorbis).expect("a live kind"));
    args.extend(["-content_type", "application/ogg", "-f", "ogg", &url].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn(
        "ffmpeg source",
        interop_support::ffmpeg(&args),
        tmp.join("source.log"),
    )
}

async fn admin_update(addr: SocketAddr, query: &str) {
    let req = format!(
        "GET /admin/metadata?mount={MOUNT}&mode=updinfo&{query} HTTP/1.0\r\n{}\r\n",
        common::ADMIN
    );
    let reply = common::exchange(addr, req.as_bytes(), Duration::from_secs(5)).await;
    let (status, _, body) = common::split_reply(&reply);
    assert!(
        status == 200 && body.contains("Metadata update successful"),
        "{query}: {status} {body}"
    );
}

fn enc(s: &str) -> String {
    floecast::http::request::percent_encode(s)
}

/// `pages` (a listener's capture, cut at both ends) is valid chained Ogg with `chains`
/// chains: every CRC right, each serial's pages numbered without gaps, and every stream
/// but the last ended by an EOS page before the next chain's BOS page.
fn check_chains(pages: &[OggPage], chains: usize) {
    assert!(pages.iter().all(|p| p.crc_ok), "a page with a bad CRC");
    let mut serials: Vec<u32> = Vec::new();
    let mut ended = true;
    for (i, p) in pages.iter().enumerate() {
        if p.bos() {
            assert!(ended, "page {i}: a new chain before the old stream's EOS");
            assert!(!serials.contains(&p.serial), "page {i}: serial reused");
            serials.push(p.serial);
            ended = false;
        } else {
            assert_eq!(Some(&p.serial), serials.last(), "page {i}: {p:?}");
            assert!(!ended, "page {i}: a page after its stream's EOS");
            let prev = &pages[i - 1];
            assert_eq!(p.sequence, prev.sequence + 1, "page {i}: sequence gap");
        }
        ended |= p.header_type & 0x04 != 0;
    }
    assert_eq!(serials.len(), chains, "chains seen: serials {serials:x?}");
}

/// Error lines in a player's output, minus the harmless ones.
fn no_errors(out: &Output, patterns: &[&str], harmless: &[&str]) -> Result<(), String> {
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            patterns.iter().any(|p| lower.contains(p)) && !harmless.iter().any(|h| l.contains(h))
        })
        .take(5)
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("errors: {errors:?}"))
    }
}

/// The raw 44.1 kHz stereo 16-bit PCM in `path` lasts at least `seconds`, and no quarter
/// second of it is silent: playback went on across the chain changes.
fn sounds_throughout(path: &std::path::Path, seconds: f32) -> Result<(), String> {
    let pcm = std::fs::read(path).map_err(|e| format!("no decoded output: {e}"))?;
    let want = (seconds * 44_100.0 * 4.0) as usize;
    if pcm.len() < want {
        return Err(format!(
            "only {:.1} s decoded, want {seconds} s",
            pcm.len() as f32 / 176_400.0
        ));
    }
    let quarter = 44_100;
    for (i, window) in pcm.chunks_exact(quarter).enumerate() {
        let peak = window
            .chunks_exact(2)
            .map(|s| (i16::from_le_bytes([s[0], s[1]]) as i32).abs())
            .max()
            .unwrap_or(0);
        if peak < NOT_SILENT {
            return Err(format!("silent at {:.2} s (peak {peak})", i as f32 * 0.25));
        }
    }
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}
