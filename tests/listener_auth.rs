//! Listener authentication (icecast2's htpasswd and url authenticators, the latter against a
//! fake backend), the `manageauth` admin command and the STATS method, over real TCP against the replies recorded from icecast2
//! 2.4.4: the 401 bytes and realm, duplicate logins refused with 401, `<username>` in
//! `listclients`, `authenticator` in stats and `listmounts`, manageauth's documents and file
//! rewrites, and the `EVENT <scope> <name> <value>` stream.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use floecast::config::{ListenerAuth, MountConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(3);
/// `admin:hackme`, `source:hackme`, `alice:secret`, `alice:wrong`.
const ALICE: &str = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n";
const ALICE_WRONG: &str = "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n";
/// `printf secret | md5sum`: icecast's htpasswd line format.
const ALICE_LINE: &str = "alice:5ebe2294ecd0e0f08eab7690d2a6ee69\n";

/// A fresh directory with an htpasswd file holding `content`.
fn htpasswd(test: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floecast-auth-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("users.htpasswd");
    std::fs::write(&path, content).expect("write htpasswd");
    path
}

fn auth_config(path: &std::path::Path, allow_duplicate_users: bool) -> floecast::config::Config {
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/auth.mp3".into(),
        authentication: Some(ListenerAuth::htpasswd(
            path.to_path_buf(),
            allow_duplicate_users,
        )),
        ..Default::default()
    });
    config
}

/// Send a GET and return (status, head, body) once the server closes (or after `T`).
async fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.0\r\n{headers}\r\n");
    split_reply(&exchange(addr, req.as_bytes(), T).await)
}

/// The 401 as icecast2 2.4.4 sends it (recorded), minus the Date value.
fn assert_icecast_401(head: &str, body: &str) {
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "HTTP/1.0 401 Authentication Required", "{head}");
    assert!(
        lines.contains(&"Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(
        lines.contains(&"WWW-Authenticate: Basic realm=\"Icecast2 Server\""),
        "{head}"
    );
    assert!(lines.contains(&"Connection: Close"), "{head}");
    assert_eq!(body, "You need to authenticate\r\n");
}

#[tokio::test]
async fn listeners_need_htpasswd_credentials() {
    let path = htpasswd("creds", ALICE_LINE);
    let srv = start(auth_config(&path, false)).await;
    let mut src = source(srv.addr, "/auth.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(20)).await.unwrap();
    let _open = source(srv.addr, "/open.mp3", "audio/mpeg", "").await;

    let (status, head, body) = get(srv.addr, "/auth.mp3", "").await;
    assert_eq!(status, 401);
    assert_icecast_401(&head, &body);
    let (status, head, body) = get(srv.addr, "/auth.mp3", ALICE_WRONG).await;
    assert_eq!(status, 401);
    assert_icecast_401(&head, &body);
    // An unknown user, and a user whose stored hash is the password itself (Apache-style
    // plain text is not icecast's format).
    let (status, ..) = get(
        srv.addr,
        "/auth.mp3",
        "Authorization: Basic Ym9iOnNlY3JldA==\r\n",
    )
    .await;
    assert_eq!(status, 401);

    // The open mount next to it needs nothing.
    let (head, _l) = listen(srv.addr, "/open.mp3", "", T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");

    let (head, mut alice) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let audio = read_at_least(&mut alice, 1000, T).await;
    assert!(audio.len() >= 1000, "authenticated listener got audio");
    wait_listeners(&srv, "/auth.mp3", 1, T).await;

    // A second concurrent login of the same user: 401 (allow_duplicate_users = 0).
    let (status, head, body) = get(srv.addr, "/auth.mp3", ALICE).await;
    assert_eq!(status, 401);
    assert_icecast_401(&head, &body);
    let m = srv.app.server.registry.get("/auth.mp3").unwrap();
    assert_eq!(m.listener_count(), 1);
    assert_eq!(
        m.stats
            .listener_peak
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "a refused duplicate takes no slot"
    );

    // listclients names the user, as icecast's <username>; JSON too.
    let (_, _, body) = get(srv.addr, "/admin/listclients?mount=/auth.mp3", ADMIN).await;
    assert!(
        body.contains("<ID>") && body.contains("</ID><username>alice</username></listener>"),
        "{body}"
    );
    let (_, _, body) = get(srv.addr, "/admin/listclients.json?mount=/auth.mp3", ADMIN).await;
    assert!(body.contains("\"username\":\"alice\""), "{body}");
    let (_, _, body) = get(srv.addr, "/admin/listclients?mount=/open.mp3", ADMIN).await;
    assert!(!body.contains("<username>"), "{body}");

    // Stats and listmounts name the authenticator, only on the authenticated mount.
    let (_, _, body) = get(srv.addr, "/admin/stats", ADMIN).await;
    let auth_source = body
        .split("<source mount=\"/auth.mp3\">")
        .nth(1)
        .and_then(|s| s.split("</source>").next())
        .unwrap_or("");
    assert!(
        auth_source.contains("<authenticator>htpasswd</authenticator>"),
        "{body}"
    );
    assert_eq!(body.matches("<authenticator>").count(), 1, "{body}");
    let (_, _, body) = get(srv.addr, "/admin/listmounts", ADMIN).await;
    assert!(
        body.contains("<listeners>1</listeners><authenticator>htpasswd</authenticator><Connected>"),
        "{body}"
    );

    // Once alice leaves, she may log in again.
    drop(alice);
    src.write_all(&mp3_frames(5)).await.unwrap();
    wait_listeners(&srv, "/auth.mp3", 0, T).await;
    let (head, _again) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");

    // The playlist command composes with credentials.
    let (_, _, body) = get(
        srv.addr,
        "/admin/buildm3u?mount=/auth.mp3&username=alice&password=secret",
        "",
    )
    .await;
    assert_eq!(
        body,
        format!(
            "http://alice:secret@localhost:{}/auth.mp3\r\n",
            srv.addr.port()
        )
    );
}

#[tokio::test]
async fn duplicate_logins_when_allowed_and_file_changes_are_seen() {
    let path = htpasswd("dups", ALICE_LINE);
    let srv = start(auth_config(&path, true)).await;
    let mut src = source(srv.addr, "/auth.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(5)).await.unwrap();
    let (h1, _a) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    let (h2, _b) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    assert!(h1.starts_with("HTTP/1.0 200 OK\r\n") && h2.starts_with("HTTP/1.0 200 OK\r\n"));
    wait_listeners(&srv, "/auth.mp3", 2, T).await;

    // Edit the file behind the server's back: the change applies without a restart.
    std::fs::write(&path, "# alice is gone\n").unwrap();
    wait_for_status(srv.addr, ALICE, 401).await;
    std::fs::write(&path, ALICE_LINE).unwrap();
    wait_for_status(srv.addr, ALICE, 200).await;
}

/// Retry a login until the server's answer settles (the file is re-checked once a second).
async fn wait_for_status(addr: SocketAddr, headers: &str, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (head, _s) = listen(addr, "/auth.mp3", headers, T).await;
        if head.starts_with(&format!("HTTP/1.0 {want} ")) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn manageauth_lists_adds_and_deletes_like_icecast() {
    let path = htpasswd("manage", ALICE_LINE);
    let srv = start(auth_config(&path, false)).await;
    let _src = source(srv.addr, "/auth.mp3", "audio/mpeg", "").await;
    let _open = source(srv.addr, "/open.mp3", "audio/mpeg", "").await;
    let m = |q: &str| format!("/admin/manageauth?mount=/auth.mp3{q}");

    // Recorded from icecast2 2.4.4, byte for byte.
    let (status, head, body) = get(srv.addr, &m("&action=list"), ADMIN).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: text/xml; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("Content-Length: 118\r\n"), "{head}");
    assert_eq!(
        body,
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/auth.mp3\"><User><username>alice</username></User></source></icestats>\n"
    );
    // No action lists too; so does an unknown one.
    assert_eq!(get(srv.addr, &m(""), ADMIN).await.2, body);
    assert_eq!(get(srv.addr, &m("&action=bogus"), ADMIN).await.2, body);
    // The mount's source credentials may manage it, as for other mount commands.
    assert_eq!(get(srv.addr, &m("&action=list"), SOURCE).await.0, 200);
    assert_eq!(get(srv.addr, &m("&action=list"), ALICE).await.0, 401);

    let (status, _, body) = get(srv.addr, &m("&action=add&username=bob&password=pw"), ADMIN).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/auth.mp3\"><User><username>alice</username></User><User><username>bob</username></User></source><iceresponse><message>User added</message></iceresponse></icestats>\n"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!("{ALICE_LINE}bob:8fe4c11451281c094a6578e6ddbf5eed\n")
    );
    // bob can listen at once.
    let (head, bob) = listen(
        srv.addr,
        "/auth.mp3",
        "Authorization: Basic Ym9iOnB3\r\n",
        T,
    )
    .await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    drop(bob);

    let (_, _, body) = get(
        srv.addr,
        &m("&action=add&username=bob&password=other"),
        ADMIN,
    )
    .await;
    assert!(
        body.ends_with("<iceresponse><message>User already exists - not added</message></iceresponse></icestats>\n"),
        "{body}"
    );
    // Missing parameters and a mount without authentication: icecast's 400.
    for q in [
        m("&action=add&username=carol"),
        m("&action=add&password=x"),
        m("&action=delete"),
        "/admin/manageauth?mount=/open.mp3&action=list".to_string(),
    ] {
        let (status, _, body) = get(srv.addr, &q, ADMIN).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(
            body,
            "<html><head><title>Error 400</title></head><body><b>400 - missing parameter</b></body></html>\r\n",
            "{q}"
        );
    }
    // A name that would corrupt the file is refused.
    let (status, ..) = get(srv.addr, &m("&action=add&username=a%3Ab&password=x"), ADMIN).await;
    assert_eq!(status, 400);

    let (_, _, body) = get(srv.addr, &m("&action=delete&username=bob"), ADMIN).await;
    assert_eq!(
        body,
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/auth.mp3\"><User><username>alice</username></User></source><iceresponse><message>User deleted</message></iceresponse></icestats>\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ALICE_LINE);
    let (status, ..) = get(srv.addr, "/auth.mp3", "Authorization: Basic Ym9iOnB3\r\n").await;
    assert_eq!(status, 401, "a deleted user is refused at once");

    // JSON, like the other commands.
    let (_, head, body) = get(
        srv.addr,
        "/admin/manageauth.json?mount=/auth.mp3&action=add&username=carol&password=c",
        ADMIN,
    )
    .await;
    assert!(head.contains("application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["iceresponse"]["message"], "User added");
    assert_eq!(v["sources"][0]["mount"], "/auth.mp3");
    assert_eq!(v["sources"][0]["users"][1]["username"], "carol");
    let (_, _, body) = get(
        srv.addr,
        &m("&action=list"),
        &format!("{ADMIN}Accept: application/json\r\n"),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sources"][0]["users"].as_array().map(Vec::len), Some(2));
    assert!(v.get("iceresponse").is_none());
}

/// Read STATS lines until one satisfies `done` (or panic after `T`).
async fn read_events(s: &mut TcpStream, buf: &mut String, done: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    let mut chunk = [0u8; 8192];
    while !done(buf) {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            _ => panic!("STATS stream ended or stalled; got:\n{buf}"),
        }
    }
}

#[tokio::test]
async fn stats_method_streams_a_dump_then_changes() {
    let path = htpasswd("stats", ALICE_LINE);
    let srv = start(auth_config(&path, false)).await;
    let mut a = source(srv.addr, "/auth.mp3", "audio/mpeg", "ice-name: A\r\n").await;
    a.write_all(&mp3_frames(5)).await.unwrap();
    let b = source(srv.addr, "/b.mp3", "audio/mpeg", "").await;

    // Bad or source credentials: icecast's 401.
    for creds in ["", SOURCE, "Authorization: Basic YWRtaW46bm8=\r\n"] {
        let raw = exchange(
            srv.addr,
            format!("STATS /admin/stats HTTP/1.0\r\n{creds}\r\n").as_bytes(),
            T,
        )
        .await;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        assert_icecast_401(head, body);
    }

    // The path does not matter to icecast either.
    let mut s = connect(srv.addr).await;
    s.write_all(format!("STATS / HTTP/1.0\r\n{ADMIN}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    read_events(&mut s, &mut buf, |b| b.contains("EVENT /b.mp3 user_agent")).await;
    assert!(
        buf.starts_with("HTTP/1.0 200 OK\r\n\r\nEVENT global admin icemaster@localhost\n"),
        "{buf}"
    );
    for line in [
        "EVENT global sources 2\n",
        "EVENT global stats 1\n",
        "EVENT global stats_connections 1\n",
        "EVENT /auth.mp3 authenticator htpasswd\n",
        "EVENT /auth.mp3 server_name A\n",
        "EVENT /auth.mp3 listeners 0\n",
        "EVENT /b.mp3 listeners 0\n",
    ] {
        assert!(buf.contains(line), "missing {line:?} in\n{buf}");
    }
    let body: Vec<&str> = buf["HTTP/1.0 200 OK\r\n\r\n".len()..].lines().collect();
    assert!(
        body.iter()
            .all(|l| l.starts_with("EVENT ") && l.split(' ').count() >= 4),
        "{buf}"
    );
    // The dump: global stats first, then each mount's.
    let dump_end = body
        .iter()
        .position(|l| l.starts_with("EVENT /b.mp3 user_agent"))
        .unwrap();
    let first_mount = body
        .iter()
        .position(|l| !l.starts_with("EVENT global "))
        .unwrap();
    assert!(
        body[first_mount..=dump_end]
            .iter()
            .all(|l| !l.starts_with("EVENT global ")),
        "{buf}"
    );

    // Live changes: a title, a listener, and a mount that goes away.
    buf.clear();
    let (status, ..) = get(
        srv.addr,
        "/admin/metadata?mount=/b.mp3&mode=updinfo&song=Hello%20World",
        ADMIN,
    )
    .await;
    assert_eq!(status, 200);
    read_events(&mut s, &mut buf, |b| {
        b.contains("EVENT /b.mp3 title Hello World\n")
    })
    .await;
    let (_, _alice) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    read_events(&mut s, &mut buf, |b| {
        b.contains("EVENT /auth.mp3 listeners 1\n")
    })
    .await;
    drop(b);
    read_events(&mut s, &mut buf, |b| b.contains("EVENT /b.mp3 null null\n")).await;
    read_events(&mut s, &mut buf, |b| b.contains("EVENT global sources 1\n")).await;

    // The admin stats document counts the STATS client.
    let (_, _, doc) = get(srv.addr, "/admin/stats", ADMIN).await;
    assert!(doc.contains("<stats>1</stats>"), "{doc}");
    assert!(
        doc.contains("<stats_connections>1</stats_connections>"),
        "{doc}"
    );
    drop(s);
    wait_for("STATS client gone", T, || {
        srv.app
            .server
            .stats
            .stats_clients
            .load(std::sync::atomic::Ordering::Acquire)
            == 0
    })
    .await;
}

#[tokio::test]
async fn a_reloaded_config_applies_to_live_mounts() {
    let path = htpasswd("reload", ALICE_LINE);
    let srv = start(test_config()).await;
    let mut src = source(srv.addr, "/auth.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(5)).await.unwrap();
    let (head, _open) = listen(srv.addr, "/auth.mp3", "", T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");

    // As SIGHUP does: the live mount is protected from the next listener on.
    srv.app.server.replace_config(auth_config(&path, false));
    let (status, ..) = get(srv.addr, "/auth.mp3", "").await;
    assert_eq!(status, 401);
    let (head, _alice) = listen(srv.addr, "/auth.mp3", ALICE, T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let (status, ..) = get(srv.addr, "/admin/manageauth?mount=/auth.mp3", ADMIN).await;
    assert_eq!(status, 200);

    srv.app.server.replace_config(test_config());
    let (head, _again) = listen(srv.addr, "/auth.mp3", "", T).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let (status, ..) = get(srv.addr, "/admin/manageauth?mount=/auth.mp3", ADMIN).await;
    assert_eq!(status, 400);
}

/// A fake icecast URL-auth backend: records each request (head and body) and accepts
/// `user=alice&pass=secret` with a 1 s time limit.
async fn auth_backend() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Head, then Content-Length bytes of body.
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let ok = text.contains("action=listener_add")
                    && text.contains("&user=alice&pass=secret&");
                let reply = if ok {
                    "HTTP/1.1 200 OK\r\nicecast-auth-user: 1\r\nicecast-auth-timelimit: 1\r\nContent-Length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nicecast-auth-message: nope\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = tx.send(text);
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn url_authentication_asks_the_backend() {
    let (backend, mut requests) = auth_backend().await;
    let mut url = floecast::config::UrlAuth::new(format!("http://{backend}/add"));
    url.listener_remove = Some(format!("http://{backend}/remove"));
    url.username = Some("icecast".into());
    url.password = Some("b4ck".into());
    url.headers = vec!["Referer".into()];
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/u.mp3".into(),
        authentication: Some(ListenerAuth {
            backend: floecast::config::AuthBackend::Url(url),
            allow_duplicate_users: false,
        }),
        ..Default::default()
    });
    let srv = start(config).await;
    let mut src = source(srv.addr, "/u.mp3", "audio/mpeg", "").await;
    src.write_all(&mp3_frames(5)).await.unwrap();

    // Refused by the backend: icecast's 401.
    let (status, head, body) = get(srv.addr, "/u.mp3", ALICE_WRONG).await;
    assert_eq!(status, 401);
    assert_icecast_401(&head, &body);
    let refused = requests.recv().await.unwrap();
    assert!(refused.starts_with("POST /add HTTP/1.0\r\n"), "{refused}");
    // The backend's own credentials: icecast:b4ck.
    assert!(
        refused.contains("Authorization: Basic aWNlY2FzdDpiNGNr\r\n"),
        "{refused}"
    );

    // Accepted, with the fields icecast sends, then cut off after the 1 s time limit.
    let port = srv.addr.port();
    let (head, mut alice) = listen(
        srv.addr,
        "/u.mp3?x=1",
        &format!("{ALICE}Referer: http://site/\r\n"),
        T,
    )
    .await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let add = requests.recv().await.unwrap();
    let body = add.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let client = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("client="))
        .unwrap_or("?")
        .to_string();
    assert_eq!(
        body,
        format!(
            "action=listener_add&server=localhost&port={port}&client={client}&mount=%2Fu.mp3%3Fx%3D1\
             &user=alice&pass=secret&ip=127.0.0.1&agent=test%2F1.0&ClientHeader.Referer=http%3A%2F%2Fsite%2F"
        )
    );
    let (_, _, doc) = get(srv.addr, "/admin/listclients?mount=/u.mp3", ADMIN).await;
    assert!(doc.contains("<username>alice</username>"), "{doc}");
    let (_, _, doc) = get(srv.addr, "/admin/stats", ADMIN).await;
    assert!(doc.contains("<authenticator>url</authenticator>"), "{doc}");
    // manageauth cannot list a url backend's users: icecast's 400.
    assert_eq!(
        get(srv.addr, "/admin/manageauth?mount=/u.mp3", ADMIN)
            .await
            .0,
        400
    );

    let t0 = std::time::Instant::now();
    let mut rest = [0u8; 4096];
    // Read (and drop) audio until the server ends the connection at the time limit.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), alice.read(&mut rest)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the 1 s time limit did not end the listener"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let remove = tokio::time::timeout(T, requests.recv())
        .await
        .unwrap()
        .unwrap();
    let body = remove.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    assert!(remove.starts_with("POST /remove HTTP/1.0\r\n"), "{remove}");
    assert!(
        body.starts_with(&format!(
            "action=listener_remove&server=localhost&port={port}&client={client}&mount=%2Fu.mp3%3Fx%3D1&user=alice&pass=secret&duration="
        )),
        "{body}"
    );
    assert!(body.ends_with("&ip=127.0.0.1&agent=test%2F1.0"), "{body}");
}

#[tokio::test]
async fn url_authentication_refuses_when_the_backend_is_down() {
    // A port nobody listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let mut config = test_config();
    config.mounts.push(MountConfig {
        name: "/u.mp3".into(),
        authentication: Some(ListenerAuth {
            backend: floecast::config::AuthBackend::Url(floecast::config::UrlAuth::new(format!(
                "http://{addr}/add"
            ))),
            allow_duplicate_users: false,
        }),
        ..Default::default()
    });
    let srv = start(config).await;
    let _src = source(srv.addr, "/u.mp3", "audio/mpeg", "").await;
    let (status, ..) = get(srv.addr, "/u.mp3", ALICE).await;
    assert_eq!(status, 401);
}
