//! Titles and ICY metadata as users see them, with the real programs (issue 9, breaks 3, 4,
//! 5 and parts of 14): chained Ogg from ezstream, liquidsoap (http and icy), ices2 (playlist
//! and stdinpcm with SIGUSR1) and curl must move the title with every chain in status-json
//! and /admin/stats (XML and JSON); Ogg titles and artists stay apart as in icecast2; Ogg
//! mounts carry no ICY metadata unless opted in, so mplayer and mpv play them; and icecast2
//! itself, fed the same input, reports the same titles, bitrates and FLAC version.
//! Media is pink noise generated with ffmpeg at test time, a second or two per track.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ADMIN;
use floecast::config::{Config, ListenSocket, MountConfig};
use interop_support::{
    Icecast2, Proc, TempDir, assert_decodes, ffmpeg, ffmpeg_source, have_all, header,
    icecast2_available, ogg_pages, raw_get, run, running_as_root, wait_live, wav_peak,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest wait for one expected title.
const T: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------------------------------
// Media

/// Seconds of pink noise per playlist track: long enough to be seen by polling, short
/// enough to keep each case within a few seconds.
const TRACK_SECONDS: &str = "1.5";

/// Write `seconds` of stereo pink noise, tagged TITLE/ARTIST, encoded with `codec_args`.
async fn make_track(path: &Path, seconds: &str, title: &str, artist: &str, codec_args: &[&str]) {
    let src = format!("anoisesrc=color=pink:duration={seconds}:sample_rate=44100:amplitude=0.3");
    let t = format!("title={title}");
    let a = format!("artist={artist}");
    let p = path.to_str().expect("utf-8 path");
    let mut args = vec!["-v", "error", "-f", "lavfi", "-i", &src, "-ac", "2"];
    args.extend_from_slice(codec_args);
    args.extend_from_slice(&["-metadata", &t, "-metadata", &a, "-y", p]);
    let out = run(ffmpeg(&args), Duration::from_secs(60)).await;
    assert!(
        out.success(),
        "ffmpeg could not make {p}: {}",
        out.describe()
    );
}

/// Vorbis in 100 ms Ogg pages, so that part of a track already holds whole data pages.
const VORBIS: &[&str] = &["-c:a", "libvorbis", "-page_duration", "100000"];
const MP3: &[&str] = &["-c:a", "libmp3lame", "-b:a", "128k"];

/// Tracks "Song i" by "Artist i" (i = 1..=n) in `dir`, plus a playlist file listing them.
async fn vorbis_playlist(dir: &TempDir, n: usize) -> (Vec<PathBuf>, PathBuf) {
    let mut tracks = Vec::new();
    for i in 1..=n {
        let p = dir.join(&format!("t{i}.ogg"));
        let (title, artist) = song(i);
        make_track(&p, TRACK_SECONDS, &title, &artist, VORBIS).await;
        tracks.push(p);
    }
    let list = dir.join("playlist.txt");
    write_lines(&list, &tracks);
    (tracks, list)
}

fn song(i: usize) -> (String, String) {
    (format!("Song {i}"), format!("Artist {i}"))
}

fn write_lines(path: &Path, files: &[PathBuf]) {
    let text: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    std::fs::write(path, text).expect("write playlist");
}

// ------------------------------------------------------------------------------------------
// Where titles are seen: status-json, /admin/stats (XML) and /admin/stats.json

/// `(title, artist)` of one mount in one document; `None` when the mount is not listed.
type Shown = Option<(Option<String>, Option<String>)>;

async fn body_of(addr: SocketAddr, path: &str, auth: &str) -> String {
    let req = format!("GET {path} HTTP/1.0\r\n{auth}\r\n");
    let raw = common::exchange(addr, req.as_bytes(), Duration::from_secs(5)).await;
    let (status, head, body) = common::split_reply(&raw);
    assert_eq!(status, 200, "GET {path}: {head}");
    body
}

/// The `source` object of `mount` in `/status-json.xsl` (object or array, matched by
/// `listenurl` since the document has no mount key).
async fn status_json_source(addr: SocketAddr, mount: &str) -> Option<Value> {
    let doc: Value = serde_json::from_str(&body_of(addr, "/status-json.xsl", "").await)
        .expect("status-json.xsl is JSON");
    let sources = match &doc["icestats"]["source"] {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    sources
        .into_iter()
        .find(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)))
}

fn json_text(v: &Value, key: &str) -> Option<String> {
    match &v[key] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

async fn in_status_json(addr: SocketAddr, mount: &str) -> Shown {
    let s = status_json_source(addr, mount).await?;
    Some((json_text(&s, "title"), json_text(&s, "artist")))
}

/// The text of `<name>` directly in `xml` (no nested element of that name in stats).
fn xml_leaf(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    let text = &xml[start..start + len];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The `<source mount="…">` element of `mount` in an `<icestats>` document.
fn xml_source<'a>(xml: &'a str, mount: &str) -> Option<&'a str> {
    let at = xml.find(&format!("<source mount=\"{mount}\">"))?;
    let rest = &xml[at..];
    Some(&rest[..rest.find("</source>")?])
}

async fn in_admin_xml(addr: SocketAddr, mount: &str) -> Shown {
    let xml = body_of(addr, "/admin/stats", ADMIN).await;
    let src = xml_source(&xml, mount)?;
    Some((xml_leaf(src, "title"), xml_leaf(src, "artist")))
}

async fn in_admin_json(addr: SocketAddr, mount: &str) -> Shown {
    let doc: Value = serde_json::from_str(&body_of(addr, "/admin/stats.json", ADMIN).await)
        .expect("/admin/stats.json is JSON");
    let s = doc["sources"]
        .as_array()?
        .iter()
        .find(|s| s["mount"] == mount)?
        .clone();
    Some((json_text(&s, "title"), json_text(&s, "artist")))
}

/// Which documents to read: floecast has all three, icecast2 no `.json` admin variant.
#[derive(Clone, Copy)]
enum Server {
    Floecast,
    Icecast2,
}

/// Wait until every document shows `title` and `artist` for `mount`. On timeout, fail with
/// everything that was shown meanwhile.
async fn wait_shown(
    server: Server,
    addr: SocketAddr,
    mount: &str,
    title: &str,
    artist: Option<&str>,
    timeout: Duration,
) {
    if let Err(e) = shown_within(server, addr, mount, title, artist, timeout).await {
        panic!("{e}");
    }
}

/// [`wait_shown`] that returns the failure, for a caller to add its source client's log.
async fn shown_within(
    server: Server,
    addr: SocketAddr,
    mount: &str,
    title: &str,
    artist: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let want: Shown = Some((Some(title.to_string()), artist.map(str::to_string)));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: Vec<(&str, Shown)> = Vec::new();
    loop {
        let mut views = vec![
            ("status-json.xsl", in_status_json(addr, mount).await),
            ("/admin/stats", in_admin_xml(addr, mount).await),
        ];
        if let Server::Floecast = server {
            views.push(("/admin/stats.json", in_admin_json(addr, mount).await));
        }
        if views.iter().all(|(_, v)| *v == want) {
            return Ok(());
        }
        for v in views {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{mount}: wanted title {title:?}, artist {artist:?} in every document; \
                 shown meanwhile (document, (title, artist)): {seen:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the framer of `mount` last read from the stream: chain count and the current chain's
/// tags (for a failure message).
fn chains_of(server: &floecast::server::Server, mount: &str) -> String {
    match server.registry.get(mount) {
        Some(m) => {
            let c = m.codec();
            format!(
                "{} chains, current title {:?} artist {:?}",
                c.chains, c.title, c.artist
            )
        }
        None => "no such mount".into(),
    }
}

/// Wait for "Song i" / "Artist i" for each i of `order`, in that order.
async fn wait_songs(server: Server, addr: SocketAddr, mount: &str, order: &[usize]) {
    for &i in order {
        let (title, artist) = song(i);
        wait_shown(server, addr, mount, &title, Some(&artist), T).await;
    }
}

// ------------------------------------------------------------------------------------------
// ICY metadata as a client reads it

/// A listener that asked for ICY metadata: the stream with the metadata blocks taken out,
/// and every non-empty StreamTitle in order.
#[derive(Default)]
struct IcyCapture {
    audio: Vec<u8>,
    titles: Vec<String>,
}

/// Listen to `mount` with `Icy-MetaData: 1` in the background, splitting ICY blocks out of
/// the body exactly every `icy-metaint` bytes. Returns the response head and the capture.
async fn icy_listener(
    addr: SocketAddr,
    mount: &str,
) -> (String, Arc<Mutex<IcyCapture>>, tokio::task::JoinHandle<()>) {
    let mut s = common::connect(addr).await;
    s.write_all(
        format!("GET {mount} HTTP/1.0\r\nUser-Agent: icy-test\r\nIcy-MetaData: 1\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write request");
    let (head, mut pending) = common::read_head(&mut s, T).await;
    let metaint: usize = header(&head, "icy-metaint")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no icy-metaint for {mount}: {head}"));
    let capture = Arc::new(Mutex::new(IcyCapture::default()));
    let shared = capture.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut until_meta = metaint;
        loop {
            // Take out whole audio runs and whole metadata blocks from what has arrived.
            loop {
                if until_meta > 0 && !pending.is_empty() {
                    let n = until_meta.min(pending.len());
                    shared.lock().unwrap().audio.extend(pending.drain(..n));
                    until_meta -= n;
                } else if until_meta == 0 && !pending.is_empty() {
                    let len = pending[0] as usize * 16;
                    if pending.len() < 1 + len {
                        break;
                    }
                    let block: Vec<u8> = pending.drain(..1 + len).skip(1).collect();
                    let text = String::from_utf8_lossy(&block);
                    let text = text.trim_end_matches('\0');
                    if let Some(t) = text
                        .strip_prefix("StreamTitle='")
                        .and_then(|t| t.split("';").next())
                    {
                        shared.lock().unwrap().titles.push(t.to_string());
                    }
                    until_meta = metaint;
                } else {
                    break;
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
    });
    (head, capture, task)
}

/// Wait until the ICY listener has seen `title` as a StreamTitle.
async fn wait_icy_title(capture: &Mutex<IcyCapture>, title: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if capture.lock().unwrap().titles.iter().any(|t| t == title) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ICY listener never saw StreamTitle {title:?}; it saw {:?}",
            capture.lock().unwrap().titles
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------------------------------
// Servers and sources

fn config_with(mounts: Vec<MountConfig>) -> Config {
    let mut c = common::test_config();
    c.mounts = mounts;
    c
}

/// An Ogg mount that opts in to ICY metadata, with a short interval so that blocks come
/// often in a low-bitrate stream.
fn icy_ogg_mount(name: &str) -> MountConfig {
    MountConfig {
        name: name.into(),
        icy_metadata_in_ogg: Some(true),
        mp3_metadata_interval: Some(2000),
        ..Default::default()
    }
}

/// ezstream 1.0 streaming `playlist` (Ogg files, looped) to `addr` `mount`.
fn ezstream(dir: &TempDir, tag: &str, addr: SocketAddr, mount: &str, playlist: &Path) -> Proc {
    let xml = format!(
        "<ezstream>\n  <servers><server><hostname>{}</hostname><port>{}</port>\
         <password>hackme</password><tls>None</tls></server></servers>\n  \
         <streams><stream><mountpoint>{mount}</mountpoint><format>Ogg</format></stream></streams>\n  \
         <intakes><intake><type>playlist</type><filename>{}</filename></intake></intakes>\n</ezstream>\n",
        addr.ip(),
        addr.port(),
        playlist.display()
    );
    let conf = dir.join(&format!("ezstream-{tag}.xml"));
    std::fs::write(&conf, xml).expect("write ezstream.xml");
    // ezstream refuses a config file that others may read (it holds the password).
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod ezstream.xml");
    let mut cmd = Command::new("ezstream");
    cmd.arg("-c").arg(&conf);
    Proc::spawn("ezstream", cmd, dir.join(&format!("ezstream-{tag}.log")))
}

/// A child process that is killed when dropped (a producer piped into another program).
struct Piped(Child);

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------------------------------------
// Break 3 (and 4): chained Ogg titles from real source clients

/// ezstream plays an Ogg playlist as it is: each file is a new chain with its own comment
/// header. Every chain's TITLE must show, with its ARTIST apart, in every document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ezstream_ogg_playlist_titles_follow_every_chain() {
    if !have_all("ezstream_ogg_playlist_titles", &["ffmpeg", "ezstream"]) {
        return;
    }
    let dir = TempDir::new("ez-titles");
    let (_, list) = vorbis_playlist(&dir, 3).await;
    let srv = common::start(common::test_config()).await;
    let mut ez = ezstream(&dir, "fl", srv.addr, "/ez.ogg", &list);
    wait_live(&srv.app.server, "/ez.ogg", &mut ez, T).await;
    wait_songs(Server::Floecast, srv.addr, "/ez.ogg", &[1, 2, 3, 1]).await;
    ez.assert_running();
}

/// liquidsoap encodes a playlist of Ogg and MP3 files to `%ogg(%vorbis)`, a new chain per
/// track, over icecast's HTTP protocol and over the SHOUTcast (icy) port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liquidsoap_ogg_titles_follow_every_track_over_http_and_icy() {
    if !have_all("liquidsoap_ogg_titles", &["ffmpeg", "liquidsoap"]) {
        return;
    }
    let dir = TempDir::new("liq-titles");
    let mut tracks = Vec::new();
    for i in 1..=4 {
        let (title, artist) = song(i);
        let (ext, codec) = if i % 2 == 0 {
            ("mp3", MP3)
        } else {
            ("ogg", VORBIS)
        };
        let p = dir.join(&format!("t{i}.{ext}"));
        make_track(&p, TRACK_SECONDS, &title, &artist, codec).await;
        tracks.push(p);
    }
    let list = dir.join("playlist.txt");
    write_lines(&list, &tracks);

    let mut config = common::test_config();
    config.listen = vec![ListenSocket {
        port: 0,
        bind_address: Some("127.0.0.1".into()),
        shoutcast_mount: Some("/liqicy.ogg".into()),
        tls: Default::default(),
    }];
    let srv = common::start_with_icy_port(config).await;
    let port = srv.addr.port();
    let allow_root = if running_as_root() {
        "settings.init.allow_root.set(true)\n"
    } else {
        ""
    };
    // liquidsoap's icy protocol connects to port + 1 itself.
    let script = format!(
        "{allow_root}settings.log.stdout.set(true)\n\
         s = mksafe(playlist(mode=\"normal\", \"{}\"))\n\
         output.icecast(%ogg(%vorbis), host=\"127.0.0.1\", port={port}, password=\"hackme\", mount=\"/liq.ogg\", s)\n\
         output.icecast(%ogg(%vorbis), protocol=\"icy\", host=\"127.0.0.1\", port={port}, password=\"hackme\", mount=\"/liqicy.ogg\", s)\n",
        list.display()
    );
    let path = dir.join("titles.liq");
    std::fs::write(&path, script).expect("write script");
    let mut cmd = Command::new("liquidsoap");
    cmd.arg(&path);
    let mut liq = Proc::spawn("liquidsoap", cmd, dir.join("liquidsoap.log"));
    wait_live(&srv.app.server, "/liq.ogg", &mut liq, T).await;
    wait_live(&srv.app.server, "/liqicy.ogg", &mut liq, T).await;
    for mount in ["/liq.ogg", "/liqicy.ogg"] {
        // Track 1 may already be gone when the poll starts; 2, 3, 4 come in order.
        wait_songs(Server::Floecast, srv.addr, mount, &[2, 3, 4]).await;
    }
    liq.assert_running();
}

/// ices2 with a playlist (files passed through, one chain each) and ices2 encoding PCM
/// from stdin, whose metadata file is re-read on SIGUSR1 and starts a new chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ices2_playlist_and_stdinpcm_titles_follow_every_chain() {
    if !have_all("ices2_titles", &["ffmpeg", "ices2", "kill"]) {
        return;
    }
    let dir = TempDir::new("ices-titles");
    let (_, list) = vorbis_playlist(&dir, 3).await;
    let srv = common::start(common::test_config()).await;
    let instance = |mount: &str, encode: &str| {
        format!(
            "<instance><hostname>127.0.0.1</hostname><port>{}</port><password>hackme</password>\
             <mount>{mount}</mount>{encode}</instance>",
            srv.addr.port()
        )
    };
    let ices_xml = |input: &str, instance: &str| {
        format!(
            "<ices><background>0</background><logpath>{}</logpath><logfile>ices.log</logfile>\
             <loglevel>3</loglevel><consolelog>1</consolelog><stream>\
             <metadata><name>ices test</name></metadata><input>{input}</input>{instance}\
             </stream></ices>\n",
            dir.path().display()
        )
    };

    let playlist_conf = dir.join("playlist.xml");
    std::fs::write(
        &playlist_conf,
        ices_xml(
            &format!(
                "<module>playlist</module><param name=\"type\">basic</param>\
                 <param name=\"file\">{}</param><param name=\"random\">0</param>\
                 <param name=\"once\">0</param>",
                list.display()
            ),
            &instance("/ices.ogg", ""),
        ),
    )
    .expect("write ices playlist config");
    let mut cmd = Command::new("ices2");
    cmd.arg(&playlist_conf);
    let mut ices = Proc::spawn("ices2 playlist", cmd, dir.join("ices-playlist.log"));

    let meta = dir.join("metadata.txt");
    std::fs::write(&meta, "ARTIST=Live Artist\nTITLE=First Live\n").expect("write metadata");
    let pcm_conf = dir.join("pcm.xml");
    std::fs::write(
        &pcm_conf,
        ices_xml(
            &format!(
                "<module>stdinpcm</module><param name=\"rate\">44100</param>\
                 <param name=\"channels\">2</param><param name=\"metadata\">1</param>\
                 <param name=\"metadatafilename\">{}</param>",
                meta.display()
            ),
            &instance(
                "/pcm.ogg",
                "<encode><quality>1</quality><samplerate>44100</samplerate><channels>2</channels></encode>",
            ),
        ),
    )
    .expect("write ices stdinpcm config");
    // Real-time PCM, as a sound card would deliver it.
    let mut producer = ffmpeg(&[
        "-v",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:duration=30:sample_rate=44100:amplitude=0.3",
        "-ac",
        "2",
        "-f",
        "s16le",
        "-",
    ]);
    producer.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut producer = Piped(producer.spawn().expect("start ffmpeg"));
    let pcm = producer.0.stdout.take().expect("ffmpeg stdout");
    let mut cmd = Command::new("ices2");
    cmd.arg(&pcm_conf);
    let mut ices_pcm =
        Proc::spawn_with("ices2 stdinpcm", cmd, dir.join("ices-pcm.log"), pcm.into());

    wait_live(&srv.app.server, "/ices.ogg", &mut ices, T).await;
    wait_live(&srv.app.server, "/pcm.ogg", &mut ices_pcm, T).await;
    // ices2 2.0.3 reads the metadata file on a thread of its own at start and begins a
    // second chain with it; its log says when (and whether) that happened.
    if let Err(e) = shown_within(
        Server::Floecast,
        srv.addr,
        "/pcm.ogg",
        "First Live",
        Some("Live Artist"),
        T,
    )
    .await
    {
        panic!(
            "{e}\nices2 stdinpcm log:\n{}\nfloecast's chains on /pcm.ogg: {}",
            ices_pcm.log_text(),
            chains_of(&srv.app.server, "/pcm.ogg")
        );
    }
    wait_songs(Server::Floecast, srv.addr, "/ices.ogg", &[2, 3, 1]).await;

    std::fs::write(&meta, "ARTIST=Live Artist\nTITLE=Second Live\n").expect("write metadata");
    let out = run(
        {
            let mut c = Command::new("kill");
            c.args(["-USR1", &ices_pcm.pid().to_string()]);
            c
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(out.success(), "kill -USR1: {}", out.describe());
    wait_shown(
        Server::Floecast,
        srv.addr,
        "/pcm.ogg",
        "Second Live",
        Some("Live Artist"),
        T,
    )
    .await;
    ices.assert_running();
    ices_pcm.assert_running();
}

/// Any chained Ogg stream (here concatenated files, pushed by curl as it arrives): each
/// chain sets the title; an admin update overrides it until the next chain; on a mount that
/// opts in to ICY, a client sees every change as StreamTitle, and the stream with the ICY
/// blocks taken out is intact Ogg that ffmpeg decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_ogg_admin_override_lasts_until_the_next_chain_and_reaches_icy() {
    if !have_all("chained_ogg_admin_override", &["ffmpeg", "curl"]) {
        return;
    }
    let dir = TempDir::new("chain-override");
    let (tracks, _) = vorbis_playlist(&dir, 2).await;
    let first = std::fs::read(&tracks[0]).expect("read track 1");
    let second = std::fs::read(&tracks[1]).expect("read track 2");
    let srv = common::start(config_with(vec![icy_ogg_mount("/chain.ogg")])).await;

    let url = format!("http://source:hackme@{}/chain.ogg", srv.addr);
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-T",
        "-",
        "-H",
        "Content-Type: application/ogg",
        &url,
    ]);
    let mut curl = Proc::spawn_piped("curl source", cmd, dir.join("curl.log"));
    let mut to_curl = curl.take_stdin();
    let mut send = |bytes: &[u8]| {
        use std::io::Write;
        to_curl.write_all(bytes).expect("feed curl");
        to_curl.flush().expect("flush curl");
    };

    // Chain 1, first half: the title is its tag.
    let half = first.len() / 2;
    send(&first[..half]);
    wait_live(&srv.app.server, "/chain.ogg", &mut curl, T).await;
    wait_shown(
        Server::Floecast,
        srv.addr,
        "/chain.ogg",
        "Song 1",
        Some("Artist 1"),
        T,
    )
    .await;
    let (head, icy, reader) = icy_listener(srv.addr, "/chain.ogg").await;
    assert_eq!(
        header(&head, "content-type"),
        Some("application/ogg"),
        "{head}"
    );
    wait_icy_title(&icy, "Artist 1 - Song 1").await;

    // An admin update (artist + title, as ezstream sends them) overrides it...
    let update =
        "/admin/metadata?mount=/chain.ogg&mode=updinfo&artist=Admin%20Artist&title=Admin%20Title";
    assert!(
        body_of(srv.addr, update, ADMIN)
            .await
            .contains("Metadata update successful")
    );
    wait_shown(
        Server::Floecast,
        srv.addr,
        "/chain.ogg",
        "Admin Title",
        Some("Admin Artist"),
        T,
    )
    .await;
    send(&first[half..]);
    wait_icy_title(&icy, "Admin Artist - Admin Title").await;
    wait_shown(
        Server::Floecast,
        srv.addr,
        "/chain.ogg",
        "Admin Title",
        Some("Admin Artist"),
        T,
    )
    .await;

    // ...until the next chain brings its own tags.
    send(&second);
    wait_shown(
        Server::Floecast,
        srv.addr,
        "/chain.ogg",
        "Song 2",
        Some("Artist 2"),
        T,
    )
    .await;
    wait_icy_title(&icy, "Artist 2 - Song 2").await;
    // The status page writes "artist - title", as icecast's status.xsl does.
    let page = body_of(srv.addr, "/status.xsl", "").await;
    assert!(
        page.contains("Currently playing:</td><td class=\"streamstats\">Artist 2 - Song 2<"),
        "{page}"
    );
    curl.assert_running();

    // Taking the ICY blocks out at exactly icy-metaint leaves the Ogg stream whole.
    tokio::time::sleep(Duration::from_millis(300)).await;
    reader.abort();
    let audio = std::mem::take(&mut icy.lock().unwrap().audio);
    let pages = ogg_pages(&audio);
    assert!(
        pages.len() > 4,
        "only {} Ogg pages after ICY stripping",
        pages.len()
    );
    assert!(
        pages.iter().all(|p| p.crc_ok),
        "an Ogg page was damaged by ICY interleaving"
    );
    // ffmpeg asks for ICY metadata too and strips it itself: the opted-in mount decodes.
    send(&first);
    assert_decodes(&format!("http://{}/chain.ogg", srv.addr), 1).await;
}

// ------------------------------------------------------------------------------------------
// Break 5: no ICY metadata on Ogg by default; mplayer and mpv play Ogg mounts

/// An Ogg listener asking for ICY metadata gets none (icecast2's behaviour), so mplayer
/// (which asks, then needs a plain Ogg stream to find its demuxer) plays Ogg Vorbis and Ogg
/// Opus mounts; mpv too. Each writes about two seconds of audible PCM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mplayer_and_mpv_play_ogg_vorbis_and_opus_mounts() {
    if !have_all("mplayer_and_mpv_play_ogg", &["ffmpeg", "mplayer", "mpv"]) {
        return;
    }
    let dir = TempDir::new("ogg-players");
    let srv = common::start(common::test_config()).await;
    let noise = |mount: &str, args: &[&str]| {
        let url = format!("icecast://source:hackme@{}{mount}", srv.addr);
        let mut all = vec![
            "-v",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=color=pink:duration=30:sample_rate=48000:amplitude=0.3",
            "-ac",
            "2",
        ];
        all.extend_from_slice(args);
        all.push(&url);
        ffmpeg(&all)
    };
    let mut vorbis = Proc::spawn(
        "ffmpeg vorbis",
        noise(
            "/v.ogg",
            &[
                "-c:a",
                "libvorbis",
                "-content_type",
                "application/ogg",
                "-f",
                "ogg",
            ],
        ),
        dir.join("vorbis.log"),
    );
    let mut opus = Proc::spawn(
        "ffmpeg opus",
        noise(
            "/o.opus",
            &[
                "-c:a",
                "libopus",
                "-b:a",
                "64k",
                "-content_type",
                "audio/ogg",
                "-f",
                "opus",
            ],
        ),
        dir.join("opus.log"),
    );
    wait_live(&srv.app.server, "/v.ogg", &mut vorbis, T).await;
    wait_live(&srv.app.server, "/o.opus", &mut opus, T).await;
    // Let a second of stream build up, so each player starts on a burst.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for mount in ["/v.ogg", "/o.opus"] {
        let url = format!("http://{}{mount}", srv.addr);
        let wav = dir.join(&format!("mplayer{}.wav", mount.replace('/', "-")));
        let ao = format!("pcm:file={}", wav.display());
        let mut mplayer = Command::new("mplayer");
        mplayer.args([
            "-really-quiet",
            "-nolirc",
            "-nocache",
            "-vo",
            "null",
            "-ao",
            &ao,
        ]);
        mplayer.args(["-endpos", "2", &url]);
        let out = run(mplayer, Duration::from_secs(20)).await;
        assert_audible(&wav, &format!("mplayer on {mount}"), &out.describe());

        let wav = dir.join(&format!("mpv{}.wav", mount.replace('/', "-")));
        let file = format!("--ao-pcm-file={}", wav.display());
        let mut mpv = Command::new("mpv");
        mpv.args([
            "--no-config",
            "--really-quiet",
            "--vo=null",
            "--ao=pcm",
            &file,
        ]);
        mpv.args(["--length=2", &url]);
        let out = run(mpv, Duration::from_secs(20)).await;
        assert!(out.success(), "mpv on {mount}: {}", out.describe());
        assert_audible(&wav, &format!("mpv on {mount}"), &out.describe());

        // What made mplayer fail: ICY blocks interleaved into the Ogg stream it asked for.
        let (head, _) = raw_get(srv.addr, mount, "Icy-MetaData: 1\r\n", 0, T).await;
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert_eq!(header(&head, "icy-metaint"), None, "ICY on {mount}: {head}");
    }
    vorbis.assert_running();
    opus.assert_running();
}

/// The player wrote a WAV file with at least a second of 48 kHz stereo audio that is not
/// silence.
#[track_caller]
fn assert_audible(wav: &Path, who: &str, output: &str) {
    let data = std::fs::read(wav)
        .unwrap_or_else(|e| panic!("{who} wrote no audio ({}: {e}); {output}", wav.display()));
    let (pcm, peak) = wav_peak(&data).unwrap_or_else(|| panic!("{who}: not a PCM WAV; {output}"));
    assert!(
        pcm >= 48_000 * 4,
        "{who}: only {pcm} bytes of PCM; {output}"
    );
    assert!(peak > 1000, "{who}: silent output (peak {peak}); {output}");
}

// ------------------------------------------------------------------------------------------
// icecast2, fed the same input, reports the same things

/// ezstream plays the same chained Ogg playlist to icecast2 and to floecast: both show each
/// chain's TITLE with its ARTIST apart, and the same Vorbis `audio_bitrate`/`ice-bitrate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_and_floecast_show_the_same_chained_ogg_titles_and_bitrates() {
    let name = "icecast2_same_chained_titles";
    if !icecast2_available(name) || !have_all(name, &["ezstream"]) {
        return;
    }
    let Some(ice) = Icecast2::start(name, "").await else {
        return;
    };
    let dir = TempDir::new("ice-chain");
    let (_, list) = vorbis_playlist(&dir, 3).await;
    let srv = common::start(common::test_config()).await;
    let _ez_ice = ezstream(&dir, "ice", ice.addr, "/ez.ogg", &list);
    let mut ez = ezstream(&dir, "fl", srv.addr, "/ez.ogg", &list);
    wait_live(&srv.app.server, "/ez.ogg", &mut ez, T).await;
    // icecast2 updates its stats once the new chain's first audio page is queued, so it may
    // lag floecast by a page; each must get through every title in order.
    tokio::join!(
        wait_songs(Server::Icecast2, ice.addr, "/ez.ogg", &[2, 3, 1]),
        wait_songs(Server::Floecast, srv.addr, "/ez.ogg", &[2, 3, 1]),
    );
    let codec_stats = |s: &Value| {
        [
            "audio_bitrate",
            "ice-bitrate",
            "audio_channels",
            "audio_samplerate",
            "subtype",
        ]
        .map(|k| (k, s[k].clone()))
    };
    let ice_src = status_json_source(ice.addr, "/ez.ogg")
        .await
        .expect("icecast2 lists /ez.ogg");
    let our_src = status_json_source(srv.addr, "/ez.ogg")
        .await
        .expect("floecast lists /ez.ogg");
    assert_eq!(
        codec_stats(&our_src),
        codec_stats(&ice_src),
        "floecast vs icecast2"
    );
    assert_eq!(
        our_src["ice-bitrate"], 112,
        "libvorbis' nominal 112 kbit/s: {our_src}"
    );
}

/// The same admin updates and sources on icecast2 and floecast: artist + title on an MP3
/// mount is one `title` ("artist - title", as the ICY StreamTitle) and on a Vorbis mount a
/// separate `title` and `artist`; an Ogg FLAC mount reports `FLAC_version`; and a source's
/// empty `ice-description`/`ice-genre` (gst shout2send) reach no listener as empty headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast2_and_floecast_agree_on_admin_titles_flac_version_and_empty_headers() {
    let name = "icecast2_same_admin_titles";
    if !icecast2_available(name) || !have_all(name, &["gst-launch-1.0"]) {
        return;
    }
    let Some(ice) = Icecast2::start(name, "").await else {
        return;
    };
    let dir = TempDir::new("ice-admin");
    let srv = common::start(common::test_config()).await;
    let servers = [(Server::Icecast2, ice.addr), (Server::Floecast, srv.addr)];
    let mut sources = Vec::new();
    for (i, (_, addr)) in servers.iter().enumerate() {
        for (mount, args) in [
            (
                "/m.mp3",
                &[
                    "-c:a",
                    "libmp3lame",
                    "-content_type",
                    "audio/mpeg",
                    "-f",
                    "mp3",
                ][..],
            ),
            (
                "/v.ogg",
                &[
                    "-c:a",
                    "libvorbis",
                    "-content_type",
                    "application/ogg",
                    "-f",
                    "ogg",
                ],
            ),
            (
                "/f.ogg",
                &["-c:a", "flac", "-content_type", "audio/ogg", "-f", "ogg"],
            ),
        ] {
            let log = dir.join(&format!("ffmpeg{i}{}.log", mount.replace('/', "-")));
            sources.push(Proc::spawn(
                "ffmpeg",
                ffmpeg_source(*addr, mount, args),
                log,
            ));
        }
        let mut gst = Command::new("gst-launch-1.0");
        gst.args([
            "-q",
            "audiotestsrc",
            "is-live=true",
            "wave=pink-noise",
            "!",
            "audioconvert",
            "!",
            "lamemp3enc",
            "!",
            "shout2send",
            "ip=127.0.0.1",
            &format!("port={}", addr.port()),
            "password=hackme",
            "mount=/gst.mp3",
        ]);
        sources.push(Proc::spawn(
            "gst shout2send",
            gst,
            dir.join(&format!("gst{i}.log")),
        ));
    }
    for (_, addr) in servers {
        for mount in ["/m.mp3", "/v.ogg", "/f.ogg", "/gst.mp3"] {
            common::wait_serving(addr, mount, T, || ice.error_log()).await;
        }
        for mount in ["/m.mp3", "/v.ogg"] {
            let update = format!("/admin/metadata?mount={mount}&mode=updinfo&artist=AA&title=TT");
            assert!(
                body_of(addr, &update, ADMIN)
                    .await
                    .contains("Metadata update successful")
            );
        }
    }
    for (server, addr) in servers {
        wait_shown(server, addr, "/m.mp3", "AA - TT", None, T).await;
        wait_shown(server, addr, "/v.ogg", "TT", Some("AA"), T).await;
        // ICY's single StreamTitle joins them, as it always did.
        let (_, icy, reader) = icy_listener(addr, "/m.mp3").await;
        wait_icy_title(&icy, "AA - TT").await;
        reader.abort();
    }

    let flac_version = |s: Option<Value>| s.map(|s| s["FLAC_version"].clone());
    let theirs = flac_version(status_json_source(ice.addr, "/f.ogg").await);
    let ours = flac_version(status_json_source(srv.addr, "/f.ogg").await);
    assert_eq!(ours, theirs, "FLAC_version: floecast vs icecast2");
    assert!(
        ours.as_ref().and_then(Value::as_f64) == Some(1.0),
        "{ours:?}"
    );

    // The icy-* lines a listener gets for gst's source, which sends `ice-genre: ` and
    // `ice-description: ` empty: none is empty, and they are the same on both servers.
    let icy_lines = |head: &str| -> Vec<String> {
        head.split("\r\n")
            .filter(|l| l.to_ascii_lowercase().starts_with("icy-"))
            .map(str::to_string)
            .collect()
    };
    let (ice_head, _) = raw_get(ice.addr, "/gst.mp3", "", 0, T).await;
    let (our_head, _) = raw_get(srv.addr, "/gst.mp3", "", 0, T).await;
    let ours = icy_lines(&our_head);
    assert!(
        ours.iter().all(|l| !l.ends_with(':')),
        "empty icy header sent: {our_head}"
    );
    assert_eq!(
        ours,
        icy_lines(&ice_head),
        "floecast:\n{our_head}\nicecast2:\n{ice_head}"
    );
    for mut s in sources {
        s.assert_running();
    }
}
