//! The admin API and status documents over real TCP, against icecast2 2.4.4's recorded
//! shapes: command names, auth rules, XML element names (`<Listeners>` with a capital L,
//! `<iceresponse>`), JSON variants, `status-json.xsl`'s absent/object/array `source` and
//! `"dummy":null`, and the commands that steer listeners (kill, move, fallbacks).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use floecast::config::MountConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(3);
/// `relay:hackme` (`ADMIN` and `SOURCE` come from `common`).
const RELAY: &str = "Authorization: Basic cmVsYXk6aGFja21l\r\n";

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.body))
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
    let (status, head, body) = split_reply(&exchange(addr, req.as_bytes(), T).await);
    Reply { status, head, body }
}

/// A listener on `mount` that has read its response head.
async fn listener(addr: SocketAddr, mount: &str) -> TcpStream {
    let (head, s) = listen(addr, mount, "", T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    s
}

/// Element names in document order (`<a>`, not `</a>`), for shape comparisons.
fn element_names(xml: &str) -> Vec<String> {
    xml.split('<')
        .skip(1)
        .filter(|t| !t.starts_with('/') && !t.starts_with('?'))
        .map(|t| t.split(['>', ' ', '/']).next().unwrap_or("").to_string())
        .collect()
}

/// Digits replaced by `N`, for documents that carry times and ids.
fn shape(s: &str) -> String {
    let mut out = String::new();
    let mut prev_digit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !prev_digit {
                out.push('N');
            }
            prev_digit = true;
        } else {
            out.push(c);
            prev_digit = false;
        }
    }
    out
}

/// How exporters (icecast_exporter, munin's icecast plugins) read status-json.xsl:
/// `source` may be missing, one object, or an array. Returns (listenurl, listeners).
fn exporter_read(doc: &Value) -> Vec<(String, u64)> {
    let sources: Vec<&Value> = match doc["icestats"].get("source") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one) => vec![one],
    };
    sources
        .iter()
        .map(|s| {
            (
                s["listenurl"].as_str().unwrap_or_default().to_string(),
                s["listeners"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test]
async fn unknown_commands_are_refused_before_auth() {
    let srv = start(test_config()).await;
    for path in ["/admin/!POKE", "/admin/nope", "/admin/streamlist.txt.json"] {
        let r = get(srv.addr, path, "").await;
        assert_eq!(r.status, 400, "{path}: {}", r.head);
        assert!(r.body.contains("400 - Unrecognised command"), "{}", r.body);
    }
    // manageauth is known now (listener authentication exists): auth comes first.
    assert_eq!(
        get(srv.addr, "/admin/manageauth?mount=/a", "").await.status,
        401
    );
}

#[tokio::test]
async fn auth_rules() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/own".into(),
        password: Some("ownpass".into()),
        ..Default::default()
    });
    config.mounts.push(MountConfig {
        name: "/secret".into(),
        hidden: Some(true),
        ..Default::default()
    });
    let srv = start(config).await;
    let _a = source(srv.addr, "/a.mp3", "audio/mpeg", "").await;
    let _s = source(srv.addr, "/secret", "audio/mpeg", "").await;
    let mut own = connect(srv.addr).await;
    // source:ownpass
    own.write_all(b"SOURCE /own HTTP/1.0\r\nAuthorization: Basic c291cmNlOm93bnBhc3M=\r\nContent-Type: audio/mpeg\r\n\r\n").await.unwrap();
    let mut ok = [0u8; 19];
    own.read_exact(&mut ok).await.unwrap();
    let own_auth = "Authorization: Basic c291cmNlOm93bnBhc3M=\r\n";

    // No or wrong credentials: icecast's 401.
    for auth in ["", "Authorization: Basic YWRtaW46d3Jvbmc=\r\n", SOURCE] {
        let r = get(srv.addr, "/admin/stats", auth).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(
            r.head
                .starts_with("HTTP/1.0 401 Authentication Required\r\n")
        );
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Basic realm=\"Icecast2 Server\"")
        );
        assert_eq!(r.body, "You need to authenticate\r\n");
    }
    let r = get(srv.addr, "/admin/stats", ADMIN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/xml; charset=utf-8"));

    // A mount's source credentials work for that mount's commands only.
    let r = get(srv.addr, "/admin/listclients?mount=/a.mp3", SOURCE).await;
    assert_eq!(r.status, 200, "{}", r.head);
    let r = get(srv.addr, "/admin/listclients?mount=/own", SOURCE).await;
    assert_eq!(r.status, 401);
    let r = get(srv.addr, "/admin/listclients?mount=/own", own_auth).await;
    assert_eq!(r.status, 200);
    let r = get(srv.addr, "/admin/listclients?mount=/a.mp3", own_auth).await;
    assert_eq!(r.status, 401);
    let r = get(srv.addr, "/admin/listmounts", SOURCE).await;
    assert_eq!(r.status, 401, "general commands are admin-only");
    let r = get(srv.addr, "/admin/listmounts?mount=/a.mp3", SOURCE).await;
    assert_eq!(
        r.status, 401,
        "a mount= does not open the mount list to sources"
    );
    let r = get(srv.addr, "/admin/stats?mount=/a.mp3", SOURCE).await;
    assert_eq!(r.status, 200, "a source may read its own mount's stats");
    assert!(!r.body.contains("/secret"), "{}", r.body);

    // `/admin/` is the stats page; `<cmd>.xsl` answers with the raw document.
    let r = get(srv.addr, "/admin/", ADMIN).await;
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\"?>\n<icestats><admin>")
    );
    let r = get(srv.addr, "/admin/listclients.xsl?mount=/a.mp3", ADMIN).await;
    assert!(r.body.contains("<Listeners>0</Listeners>"), "{}", r.body);

    // A mount that is not live.
    let r = get(srv.addr, "/admin/listclients?mount=/gone", ADMIN).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("400 - Source does not exist"), "{}", r.body);
    // A mount command without mount=.
    let r = get(srv.addr, "/admin/killsource", ADMIN).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Unknown admin request"));
    let r = get(srv.addr, "/admin/killsource", "").await;
    assert_eq!(r.status, 401);

    // streamlist.txt: relay credentials only; no Content-Length, no chunking; hidden
    // mounts left out.
    let r = get(srv.addr, "/admin/streamlist.txt", ADMIN).await;
    assert_eq!(r.status, 401);
    let r = get(srv.addr, "/admin/streamlist.txt", RELAY).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("Content-Length"), None, "{}", r.head);
    assert_eq!(r.header("Transfer-Encoding"), None, "{}", r.head);
    assert_eq!(r.body, "/a.mp3\r\n/own\r\n");

    // buildm3u needs no credentials.
    let r = get(
        srv.addr,
        "/admin/buildm3u?mount=/a.mp3&username=u&password=p",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn stats_document() {
    let srv = start(test_config()).await;
    let mut src = source(
        srv.addr,
        "/live.mp3",
        "audio/mpeg",
        "Ice-Name: Live <MP3> & co\r\nIce-Genre: Test\r\nice-audio-info: bitrate=128;channels=2;samplerate=44100\r\nUser-Agent: src/1.0\r\n",
    )
    .await;
    src.write_all(&mp3_frames(20)).await.unwrap();
    let _l = listener(srv.addr, "/live.mp3").await;
    wait_listeners(&srv, "/live.mp3", 1, T).await;

    let r = get(srv.addr, "/admin/stats", ADMIN).await;
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\"?>\n<icestats><admin>icemaster@localhost</admin>"),
        "{}",
        r.body
    );
    assert!(r.body.ends_with("</source></icestats>\n"), "{}", r.body);
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    let names = element_names(&r.body);
    let src_at = names.iter().position(|n| n == "source").unwrap();
    let globals: Vec<&str> = names[1..src_at].iter().map(String::as_str).collect();
    assert_eq!(
        globals,
        [
            "admin",
            "client_connections",
            "clients",
            "connections",
            "file_connections",
            "host",
            "listener_connections",
            "listeners",
            "location",
            "server_id",
            "server_start",
            "server_start_iso8601",
            "source_client_connections",
            "source_relay_connections",
            "source_total_connections",
            "sources",
            "stats",
            "stats_connections",
        ]
    );
    let per_mount: Vec<&str> = names[src_at + 1..].iter().map(String::as_str).collect();
    let mut sorted = per_mount.clone();
    sorted.sort();
    assert_eq!(per_mount, sorted, "per-mount stats are sorted by name");
    for want in [
        "audio_info",
        "bitrate",
        "channels",
        "samplerate",
        "genre",
        "listener_peak",
        "listeners",
        "listenurl",
        "max_listeners",
        "public",
        "server_description",
        "server_name",
        "server_type",
        "slow_listeners",
        "source_ip",
        "stream_start",
        "stream_start_iso8601",
        "total_bytes_read",
        "total_bytes_sent",
        "user_agent",
        "listener_connections",
        "connections",
        "audio_samplerate",
        "audio_channels",
    ] {
        assert!(per_mount.contains(&want), "missing {want}: {per_mount:?}");
    }
    let port = srv.addr.port();
    for frag in [
        "<source mount=\"/live.mp3\">".to_string(),
        "<listeners>1</listeners>".into(),
        "<sources>1</sources>".into(),
        "<max_listeners>unlimited</max_listeners>".into(),
        "<server_name>Live &lt;MP3&gt; &amp; co</server_name>".into(),
        "<server_description>Unspecified description</server_description>".into(),
        "<audio_info>bitrate=128;channels=2;samplerate=44100</audio_info>".into(),
        "<bitrate>128</bitrate>".into(),
        "<genre>Test</genre>".into(),
        "<source_ip>127.0.0.1</source_ip>".into(),
        "<user_agent>src/1.0</user_agent>".into(),
        "<server_type>audio/mpeg</server_type>".into(),
        format!("<listenurl>http://localhost:{port}/live.mp3</listenurl>"),
        "<audio_samplerate>44100</audio_samplerate>".into(),
    ] {
        assert!(r.body.contains(&frag), "missing {frag} in {}", r.body);
    }
    let start = r
        .body
        .split("<stream_start>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    // `Tue, 06 Jun 2023 09:33:57 +0000`
    assert_eq!(
        shape(&start.replace(char::is_alphabetic, "a")),
        "aaa, N aaa N N:N:N +N",
        "{start}"
    );
    // stats.xml is the old name of the same document; stats?mount= adds the listeners.
    let old = get(srv.addr, "/admin/stats.xml", ADMIN).await;
    assert_eq!(element_names(&old.body), names);
    let one = get(srv.addr, "/admin/stats?mount=/live.mp3", ADMIN).await;
    assert!(
        one.body
            .contains("<listener><IP>127.0.0.1</IP><UserAgent>test/1.0</UserAgent>"),
        "{}",
        one.body
    );
}

#[tokio::test]
async fn listmounts_listclients_and_updatemetadata_shapes() {
    let srv = start(test_config()).await;
    let mut src = source(srv.addr, "/live.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(10)).await.unwrap();
    let _ogg = source(srv.addr, "/live.ogg", "application/ogg", "").await;
    let _l = listener(srv.addr, "/live.mp3").await;
    wait_listeners(&srv, "/live.mp3", 1, T).await;

    let r = get(srv.addr, "/admin/listmounts", ADMIN).await;
    assert_eq!(
        shape(&r.body),
        "<?xml version=\"N.N\"?>\n<icestats><source mount=\"/live.mpN\"><fallback></fallback><listeners>N</listeners><Connected>N</Connected><content-type>audio/mpeg</content-type></source><source mount=\"/live.ogg\"><fallback></fallback><listeners>N</listeners><Connected>N</Connected><content-type>application/ogg</content-type></source></icestats>\n"
    );
    assert!(r.body.contains("<listeners>1</listeners>"));
    let s = get(srv.addr, "/admin/streamlist", ADMIN).await;
    assert_eq!(shape(&s.body), shape(&r.body));

    let r = get(srv.addr, "/admin/listclients?mount=/live.mp3", ADMIN).await;
    assert_eq!(
        shape(&r.body),
        "<?xml version=\"N.N\"?>\n<icestats><source mount=\"/live.mpN\"><Listeners>N</Listeners><listener><IP>N.N.N.N</IP><UserAgent>test/N.N</UserAgent><Connected>N</Connected><ID>N</ID></listener></source></icestats>\n"
    );
    let r = get(srv.addr, "/admin/listclients?mount=/live.ogg", ADMIN).await;
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/live.ogg\"><Listeners>0</Listeners></source></icestats>\n"
    );
    let r = get(srv.addr, "/admin/updatemetadata?mount=/live.ogg", ADMIN).await;
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/live.ogg\"/></icestats>\n"
    );
    // The metadata command keeps its exact 113-byte reply under the shared dispatcher.
    let r = get(
        srv.addr,
        "/admin/metadata?mount=/live.mp3&mode=updinfo&song=probe%20test",
        SOURCE,
    )
    .await;
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n"
    );
    assert_eq!(r.header("Content-Length"), Some("113"));
}

#[tokio::test]
async fn killclient_drops_exactly_that_listener() {
    let srv = start(test_config()).await;
    let mut src = source(srv.addr, "/k.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(5)).await.unwrap();
    let mut first = listener(srv.addr, "/k.mp3").await;
    let mut second = listener(srv.addr, "/k.mp3").await;
    wait_listeners(&srv, "/k.mp3", 2, T).await;

    let clients = get(srv.addr, "/admin/listclients.json?mount=/k.mp3", ADMIN)
        .await
        .json();
    let ids: Vec<u64> = clients["sources"][0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{clients}");
    assert_eq!(clients["sources"][0]["listeners"], 2);
    let victim = ids[0];

    let r = get(
        srv.addr,
        &format!("/admin/killclient?mount=/k.mp3&id={victim}"),
        ADMIN,
    )
    .await;
    assert_eq!(
        r.body,
        format!(
            "<?xml version=\"1.0\"?>\n<iceresponse><message>Client {victim} removed</message><return>1</return></iceresponse>\n"
        )
    );
    // The first listener (lowest id) is closed; the other keeps streaming.
    let _ = read_until_close(&mut first, T).await;
    wait_listeners(&srv, "/k.mp3", 1, T).await;
    let _ = read_at_least(&mut second, 1, Duration::from_millis(200)).await;
    src.write_all(&mp3_frame(false, 0xEE).repeat(4))
        .await
        .unwrap();
    let more = read_at_least(&mut second, 417, T).await;
    assert!(more.contains(&0xEE), "the other listener must keep playing");

    let r = get(
        srv.addr,
        &format!("/admin/killclient?mount=/k.mp3&id={victim}"),
        ADMIN,
    )
    .await;
    assert!(
        r.body.contains(&format!(
            "<message>Client {victim} not found</message><return>0</return>"
        )),
        "{}",
        r.body
    );
    let r = get(srv.addr, "/admin/killclient?mount=/k.mp3", ADMIN).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn moveclients_moves_listeners() {
    let srv = start(test_config()).await;
    let mut a = source(srv.addr, "/a", "audio/mpeg", "").await;
    let mut b = source(srv.addr, "/b", "audio/mpeg", "").await;
    let _o = source(srv.addr, "/o", "application/ogg", "").await;
    a.write_all(&mp3_frame(false, 0xAA).repeat(4))
        .await
        .unwrap();
    let mut l = listener(srv.addr, "/a").await;
    wait_listeners(&srv, "/a", 1, T).await;

    // Without a destination: the other mounts to choose from.
    let r = get(srv.addr, "/admin/moveclients?mount=/a", ADMIN).await;
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\"?>\n<icestats><current_source>/a</current_source><source mount=\"/b\">"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<source mount=\"/a\">"));

    for (dest, why) in [
        ("/nope", "No such destination"),
        ("/a", "supplied mountpoints are identical"),
    ] {
        let r = get(
            srv.addr,
            &format!("/admin/moveclients?mount=/a&destination={dest}"),
            ADMIN,
        )
        .await;
        assert_eq!(r.status, 400, "{dest}");
        assert!(r.body.contains(why), "{}", r.body);
    }
    let r = get(
        srv.addr,
        "/admin/moveclients?mount=/a&destination=/o",
        ADMIN,
    )
    .await;
    assert!(r.body.contains("<return>0</return>"), "{}", r.body);

    let r = get(
        srv.addr,
        "/admin/moveclients?mount=/a&destination=/b",
        ADMIN,
    )
    .await;
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?>\n<iceresponse><message>Clients moved from /a to /b</message><return>1</return></iceresponse>\n"
    );
    wait_listeners(&srv, "/b", 1, T).await;
    wait_listeners(&srv, "/a", 0, T).await;
    let _ = read_at_least(&mut l, 1, Duration::from_millis(200)).await;
    b.write_all(&mp3_frame(false, 0xBB).repeat(4))
        .await
        .unwrap();
    let heard = read_at_least(&mut l, 417, T).await;
    assert!(heard.contains(&0xBB), "the listener must hear /b");
}

#[tokio::test]
async fn killsource_moves_listeners_to_the_fallback() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/main".into(),
        fallback_mount: Some("/backup".into()),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut backup = source(srv.addr, "/backup", "audio/mpeg", "").await;
    let mut main = source(srv.addr, "/main", "audio/mpeg", "").await;
    main.write_all(&mp3_frame(false, 0xAA).repeat(4))
        .await
        .unwrap();
    let mut l = listener(srv.addr, "/main").await;
    wait_listeners(&srv, "/main", 1, T).await;

    let r = get(srv.addr, "/admin/killsource?mount=/main", ADMIN).await;
    assert_eq!(
        r.body,
        "<?xml version=\"1.0\"?>\n<iceresponse><message>Source Removed</message><return>1</return></iceresponse>\n"
    );
    wait_for("main gone", T, || {
        !srv.app.server.registry.contains("/main")
    })
    .await;
    wait_listeners(&srv, "/backup", 1, T).await;
    // The source's connection is closed.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(T, main.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "source must be closed"
    );
    let _ = read_at_least(&mut l, 1, Duration::from_millis(200)).await;
    backup
        .write_all(&mp3_frame(false, 0xBB).repeat(4))
        .await
        .unwrap();
    let heard = read_at_least(&mut l, 417, T).await;
    assert!(heard.contains(&0xBB), "the listener must hear the fallback");
    // The mount name is free again.
    let _again = source(srv.addr, "/main", "audio/mpeg", "").await;
}

#[tokio::test]
async fn fallbacks_command_sets_where_listeners_go() {
    let srv = start(test_config()).await;
    let mut x = source(srv.addr, "/x", "audio/mpeg", "").await;
    let mut y = source(srv.addr, "/y", "audio/mpeg", "").await;
    x.write_all(&mp3_frames(4)).await.unwrap();
    let mut l = listener(srv.addr, "/x").await;
    wait_listeners(&srv, "/x", 1, T).await;

    let r = get(srv.addr, "/admin/fallbacks?mount=/x&fallback=/y", ADMIN).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(r.body.contains("Fallback configured"), "{}", r.body);
    let r = get(srv.addr, "/admin/listmounts", ADMIN).await;
    assert!(
        r.body
            .contains("<source mount=\"/x\"><fallback>/y</fallback>"),
        "{}",
        r.body
    );
    let r = get(srv.addr, "/admin/fallbacks?mount=/x", ADMIN).await;
    assert_eq!(r.status, 400);

    // The source leaves: its listener goes to the new fallback.
    drop(x);
    wait_listeners(&srv, "/y", 1, T).await;
    let _ = read_at_least(&mut l, 1, Duration::from_millis(200)).await;
    y.write_all(&mp3_frame(false, 0xCD).repeat(4))
        .await
        .unwrap();
    assert!(read_at_least(&mut l, 417, T).await.contains(&0xCD));
}

#[tokio::test]
async fn buildm3u_bytes() {
    let srv = start(test_config()).await;
    let _s = source(srv.addr, "/live.mp3", "audio/mpeg", "").await;
    let r = get(
        srv.addr,
        "/admin/buildm3u?mount=/live.mp3&username=joe&password=pw",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("audio/x-mpegurl"));
    assert_eq!(
        r.header("Content-Disposition"),
        Some("attachment; filename=listen.m3u")
    );
    assert_eq!(
        r.body,
        format!("http://joe:pw@localhost:{}/live.mp3\r\n", srv.addr.port())
    );
    let r = get(srv.addr, "/admin/buildm3u?mount=/live.mp3&username=joe", "").await;
    assert_eq!(r.status, 400);
    let r = get(
        srv.addr,
        "/admin/buildm3u?mount=/nope&username=a&password=b",
        "",
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn json_variants() {
    let srv = start(test_config()).await;
    let mut src = source(
        srv.addr,
        "/j.mp3",
        "audio/mpeg",
        "ice-audio-info: bitrate=128;channels=2\r\nIce-Name: J\r\n",
    )
    .await;
    src.write_all(&mp3_frames(10)).await.unwrap();
    let _l = listener(srv.addr, "/j.mp3").await;
    wait_listeners(&srv, "/j.mp3", 1, T).await;

    let r = get(srv.addr, "/admin/stats.json", ADMIN).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["admin"], "icemaster@localhost");
    assert_eq!(v["sources"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["listeners"], 1);
    let m = &v["sources"][0];
    assert_eq!(m["mount"], "/j.mp3");
    assert_eq!(m["listeners"], 1);
    assert_eq!(m["bitrate"], 128);
    assert_eq!(m["channels"], 2);
    assert_eq!(m["server_name"], "J");
    assert!(m["max_listeners"].is_null());
    assert!(m["total_bytes_read"].as_u64().unwrap() > 0);

    // The Accept header works as the suffix does.
    let v = get(
        srv.addr,
        "/admin/listmounts",
        &format!("{ADMIN}Accept: application/json\r\n"),
    )
    .await
    .json();
    assert_eq!(v["sources"][0]["mount"], "/j.mp3");
    assert_eq!(v["sources"][0]["listeners"], 1);
    assert_eq!(v["sources"][0]["content_type"], "audio/mpeg");
    assert!(v["sources"][0]["connected"].is_u64());
    assert!(v["sources"][0]["fallback"].is_string());

    let v = get(
        srv.addr,
        "/admin/metadata.json?mount=/j.mp3&mode=updinfo&song=Hi",
        SOURCE,
    )
    .await
    .json();
    assert_eq!(v["message"], "Metadata update successful");
    assert_eq!(v["return"], 1);
    let v = get(
        srv.addr,
        "/admin/killclient.json?mount=/j.mp3&id=999",
        ADMIN,
    )
    .await
    .json();
    assert_eq!(v["return"], 0);
    let v = get(
        srv.addr,
        "/admin/fallbacks.json?mount=/j.mp3&fallback=/z",
        ADMIN,
    )
    .await
    .json();
    assert_eq!(v["message"], "Fallback configured");
    // Auth still applies to JSON.
    assert_eq!(get(srv.addr, "/admin/stats.json", "").await.status, 401);
}

#[tokio::test]
async fn status_json_xsl_with_zero_one_and_two_mounts() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/hidden".into(),
        hidden: Some(true),
        ..Default::default()
    });
    let srv = start(config).await;
    let port = srv.addr.port();

    // No mounts: no `source` key, and the last (hidden) global prints `"dummy":null`.
    let r = get(srv.addr, "/status-json.xsl", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.body.ends_with(",\"dummy\":null}}"), "{}", r.body);
    let v = r.json();
    assert!(v["icestats"].get("source").is_none());
    assert_eq!(exporter_read(&v), vec![]);
    for hidden in [
        "sources",
        "clients",
        "stats",
        "listeners",
        "connections",
        "listener_connections",
    ] {
        assert!(
            v["icestats"].get(hidden).is_none(),
            "{hidden} must be hidden"
        );
    }
    assert_eq!(v["icestats"]["admin"], "icemaster@localhost");
    assert_eq!(v["icestats"]["host"], "localhost");
    assert_eq!(v["icestats"]["location"], "Earth");
    assert!(v["icestats"]["server_start_iso8601"].is_string());

    // One mount (and a hidden one): `source` is an object, without a mount key.
    let mut a = source(
        srv.addr,
        "/a",
        "audio/mpeg",
        "ice-audio-info: bitrate=128;channels=2;samplerate=44100\r\nIce-Name: My Radio\r\nIce-Genre: various\r\n",
    )
    .await;
    a.write_all(&mp3_frames(10)).await.unwrap();
    let _h = source(srv.addr, "/hidden", "audio/mpeg", "").await;
    let _l = listener(srv.addr, "/a").await;
    wait_listeners(&srv, "/a", 1, T).await;
    let r = get(
        srv.addr,
        "/admin/metadata?mount=/a&mode=updinfo&song=Artist%20-%20Title",
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 200);

    let r = get(srv.addr, "/status-json.xsl", "").await;
    assert!(r.body.ends_with(",\"dummy\":null}}}"), "{}", r.body);
    assert!(!r.body.contains("\"mount\""), "attributes are dropped");
    assert!(!r.body.contains("/hidden"), "hidden mounts are absent");
    let v = r.json();
    let s = &v["icestats"]["source"];
    assert!(s.is_object(), "{s}");
    assert_eq!(s["listenurl"], format!("http://localhost:{port}/a"));
    assert_eq!(s["listeners"], 1);
    assert_eq!(s["listener_peak"], 1);
    assert_eq!(s["bitrate"], 128);
    assert_eq!(s["samplerate"], 44100);
    assert_eq!(s["audio_info"], "bitrate=128;channels=2;samplerate=44100");
    assert_eq!(s["server_name"], "My Radio");
    assert_eq!(s["server_description"], "Unspecified description");
    assert_eq!(s["server_type"], "audio/mpeg");
    assert_eq!(s["title"], "Artist - Title");
    assert!(s["dummy"].is_null() && s.get("dummy").is_some());
    for hidden in [
        "max_listeners",
        "public",
        "source_ip",
        "slow_listeners",
        "total_bytes_read",
        "total_bytes_sent",
        "user_agent",
        "listener_connections",
        "connections",
    ] {
        assert!(s.get(hidden).is_none(), "{hidden} must be hidden");
    }
    // icecast's key order: alphabetical, as its stats trees are.
    let src_text = r.body.split("\"source\":").nth(1).unwrap();
    let segments: Vec<&str> = src_text.split("\":").collect();
    let keys: Vec<&str> = segments[..segments.len() - 1]
        .iter()
        .filter_map(|k| k.rsplit('"').next())
        .filter(|k| *k != "dummy")
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "{src_text}");
    assert_eq!(
        exporter_read(&v),
        vec![(format!("http://localhost:{port}/a"), 1)]
    );

    // Two mounts: an array.
    let _b = source(srv.addr, "/b", "audio/mpeg", "").await;
    let r = get(srv.addr, "/status-json.xsl", "").await;
    let v = r.json();
    assert!(v["icestats"]["source"].is_array(), "{}", r.body);
    assert!(r.body.contains("\"source\":[{"));
    assert!(r.body.ends_with("\"dummy\":null}]}}"), "{}", r.body);
    assert_eq!(
        exporter_read(&v),
        vec![
            (format!("http://localhost:{port}/a"), 1),
            (format!("http://localhost:{port}/b"), 0)
        ]
    );
    // `?mount=` narrows it to one: an object again.
    let v = get(srv.addr, "/status-json.xsl?mount=/b", "").await.json();
    assert!(v["icestats"]["source"].is_object());
    assert_eq!(
        exporter_read(&v),
        vec![(format!("http://localhost:{port}/b"), 0)]
    );
}

#[tokio::test]
async fn status_pages_and_api_status() {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/s.mp3".into(),
        max_listeners: Some(5),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut s = source(
        srv.addr,
        "/s.mp3",
        "audio/mpeg",
        "Ice-Name: Status <Test>\r\nUser-Agent: src/2\r\n",
    )
    .await;
    s.write_all(&mp3_frames(30)).await.unwrap();
    let _l = listener(srv.addr, "/s.mp3").await;
    wait_listeners(&srv, "/s.mp3", 1, T).await;
    get(
        srv.addr,
        "/admin/metadata?mount=/s.mp3&mode=updinfo&artist=A&title=B",
        ADMIN,
    )
    .await;

    let r = get(srv.addr, "/status.xsl", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/xml; charset=UTF-8"));
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    assert!(r.body.contains("Mount Point /s.mp3"), "{}", r.body);
    assert!(r.body.contains("Status &lt;Test&gt;"), "{}", r.body);
    let r = get(srv.addr, "/server_version.xsl", "").await;
    assert_eq!(r.status, 200);
    for want in ["Icecast 2.4.4", "icemaster@localhost", "localhost", "Earth"] {
        assert!(r.body.contains(want), "{want}: {}", r.body);
    }

    let r = get(srv.addr, "/api/status", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert!(
        v["server"]["id"]
            .as_str()
            .unwrap()
            .starts_with("Icecast 2.4.4")
    );
    assert_eq!(v["server"]["listeners"], 1);
    assert_eq!(v["server"]["sources"], 1);
    assert!(v["server"]["uptime_seconds"].is_u64());
    let m = &v["mounts"][0];
    assert_eq!(m["mount"], "/s.mp3");
    assert_eq!(
        m["listen_url"],
        format!("http://localhost:{}/s.mp3", srv.addr.port())
    );
    assert_eq!(m["name"], "Status <Test>");
    assert_eq!(m["content_type"], "audio/mpeg");
    assert_eq!(m["codec"], "MP3");
    assert_eq!(m["bitrate"], 128);
    assert_eq!(m["listeners"]["current"], 1);
    assert_eq!(m["listeners"]["peak"], 1);
    assert_eq!(m["listeners"]["max"], 5);
    assert!(m["uptime_seconds"].is_u64());
    assert_eq!(m["title"], "A - B");
    assert_eq!(m["artist"], "A");
    assert_eq!(m["source"]["kind"], "push");
    assert_eq!(m["source"]["ip"], "127.0.0.1");
    assert_eq!(m["source"]["user_agent"], "src/2");
    assert!(m.get("relay").is_some_and(Value::is_null));
    assert!(m.get("p2psp").is_some_and(Value::is_null));
}
