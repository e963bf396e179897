//! Interop with the real VLC 3 (spec §7 item 14; wire-captures §2 libshout, §4): VLC as an
//! icecast source through libshout (`#std{access=shout,...}`, Ogg and MP3) and VLC as a
//! listener decoding MP3 and Ogg Vorbis mounts to a WAV file. VLC refuses to run as root, so
//! as root it runs as the unprivileged `floecast-test` user via `setpriv` (skipped, with a
//! reason, when that user does not exist). Each test skips if a program is missing.

mod common;
mod interop_support;

use std::time::Duration;

use interop_support::{
    MP3_ARGS, OGG_VORBIS_ARGS, Proc, TempDir, VlcRunner, assert_decodes, assert_ogg_start,
    ffmpeg_source_live, have_all, make_tone, raw_get, raw_get_ogg, wait_live, wav_peak,
};

/// Run VLC as a source streaming a generated tone (looped) to `mount` with `mux`; the mount
/// must go live with VLC as its source, start correctly for a raw listener and decode.
async fn vlc_source(test: &str, mount: &str, media_args: &[&str], sout_extra: &[&str], mux: &str) {
    let Some(vlc) = VlcRunner::detect(test) else {
        return;
    };
    if !have_all(test, &["ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new(test);
    let ext = if mux == "ogg" { "ogg" } else { "mp3" };
    let media = tmp.join(&format!("tone.{ext}"));
    make_tone(&media, 20, media_args).await;

    let srv = common::start(common::test_config()).await;
    // No ICY socket is configured, so nothing of ours answers on port+1: VLC (libshout) must
    // end up on the HTTP port with SOURCE.
    assert!(srv.app.icy_addrs.is_empty());
    let sout = format!(
        "#std{{access=shout,mux={mux},dst=source:hackme@{}{mount}}}",
        srv.addr
    );
    let mut args = vec!["--loop", media.to_str().unwrap(), "--sout", &sout];
    args.extend_from_slice(sout_extra);
    let mut source = Proc::spawn("vlc source", vlc.command(&tmp, &args), tmp.join("vlc.log"));
    wait_live(&srv.app.server, mount, &mut source, Duration::from_secs(20)).await;

    let m = srv.app.server.registry.get(mount).expect("mount");
    let ua = m.with_info(|i| i.stream.user_agent.clone());
    assert!(
        ua.contains("VLC"),
        "the source on {mount} is not VLC (user agent {ua:?})"
    );

    let url = format!("http://{}{mount}", srv.addr);
    if mux == "ogg" {
        let (head, body) = raw_get_ogg(srv.addr, mount, 4, Duration::from_secs(12)).await;
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
        assert_eq!(
            interop_support::header(&head, "content-type"),
            Some("application/ogg"),
            "head: {head}"
        );
        assert_ogg_start(&body, b"\x01vorbis", b"\x03vorbis");
    } else {
        let (head, body) = raw_get(srv.addr, mount, "", 4096, Duration::from_secs(10)).await;
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
        assert_eq!(
            interop_support::header(&head, "content-type"),
            Some("audio/mpeg"),
            "head: {head}"
        );
        assert!(body.len() >= 4096, "only {} body bytes", body.len());
    }
    assert_decodes(&url, 3).await;
    source.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_ogg_source() {
    vlc_source(
        "vlc_ogg_source",
        "/vlc.ogg",
        &["-c:a", "libvorbis", "-q:a", "4"],
        &[],
        "ogg",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_mp3_source() {
    vlc_source(
        "vlc_mp3_source",
        "/vlc.mp3",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
        &["--sout-shout-mp3"],
        "raw",
    )
    .await;
}

/// Run VLC as a listener of `mount` (fed by ffmpeg) for 4 s with the WAV file audio output;
/// the WAV must be non-trivial and hold the tone, not silence.
async fn vlc_listener(test: &str, mount: &str, codec_args: &[&str]) {
    let Some(vlc) = VlcRunner::detect(test) else {
        return;
    };
    if !have_all(test, &["ffmpeg"]) {
        return;
    }
    let srv = common::start(common::test_config()).await;
    let tmp = TempDir::new(test);
    let mut source = ffmpeg_source_live(&srv, mount, codec_args, tmp.join("source.log")).await;

    let wav = tmp.join("out.wav");
    let url = format!("http://{}{mount}", srv.addr);
    let args = [
        "--play-and-exit",
        "--run-time=4",
        "--aout=afile",
        &format!("--audiofile-file={}", wav.display()),
        "--audiofile-wav",
        &url,
    ];
    let mut player = Proc::spawn(
        "vlc listener",
        vlc.command(&tmp, &args),
        tmp.join("vlc.log"),
    );
    let status = player.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.is_some(),
        "VLC did not stop after --run-time=4; its output:\n{}",
        player.log_text()
    );
    let data = std::fs::read(&wav).unwrap_or_default();
    assert!(
        data.len() > 100_000,
        "VLC wrote only {} bytes of WAV ({status:?}); its output:\n{}",
        data.len(),
        player.log_text()
    );
    let (pcm, peak) = wav_peak(&data).expect("VLC's output is a PCM WAV file");
    assert!(pcm > 100_000, "only {pcm} bytes of PCM");
    // The source is a sine at 1/8 of full scale: about 4096 in 16-bit samples.
    assert!(
        peak > 1000,
        "VLC decoded silence (peak {peak}); its output:\n{}",
        player.log_text()
    );
    source.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_mp3_listener() {
    vlc_listener("vlc_mp3_listener", "/ff.mp3", MP3_ARGS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_ogg_vorbis_listener() {
    vlc_listener("vlc_ogg_vorbis_listener", "/ff.ogg", OGG_VORBIS_ARGS).await;
}
