//! Interop with libshout 2.4 through its `shout` CLI (libshout-tools; spec §7 items 4, 11, 12;
//! wire-captures §2 libshout): the client goes through a recording TCP tap, so the test sees
//! the whole dance — the optional `OPTIONS *` / `GET /admin/!POKE` probe, the unauthenticated
//! SOURCE answered with 401, the authenticated SOURCE answered with the bare 200 — and then
//! checks that the mount is live and decodable. Skips if `shout` or `ffmpeg` is missing.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interop_support::{
    Proc, TempDir, assert_decodes, assert_ogg_start, have_all, make_tone, raw_get_ogg, wait_live,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What crossed one tapped connection (the first `CAP` bytes each way).
#[derive(Debug, Default, Clone)]
struct Conversation {
    request: Vec<u8>,
    reply: Vec<u8>,
}

const CAP: usize = 4096;

impl Conversation {
    fn request_text(&self) -> String {
        let end =
            interop_support::find(&self.request, b"\r\n\r\n").map_or(self.request.len(), |i| i + 4);
        String::from_utf8_lossy(&self.request[..end]).into_owned()
    }
    fn reply_text(&self) -> String {
        String::from_utf8_lossy(&self.reply[..self.reply.len().min(300)]).into_owned()
    }
}

/// A loopback TCP proxy that records every conversation, in accept order.
struct Tap {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Arc<Mutex<Conversation>>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    async fn start(upstream: SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tap");
        let addr = listener.local_addr().expect("tap addr");
        let log: Arc<Mutex<Vec<Arc<Mutex<Conversation>>>>> = Arc::default();
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let conv = Arc::new(Mutex::new(Conversation::default()));
                log2.lock().unwrap().push(conv.clone());
                tokio::spawn(relay(client, upstream, conv));
            }
        });
        Tap { addr, log, task }
    }

    fn conversations(&self) -> Vec<Conversation> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }

    fn dump(&self) -> String {
        self.conversations()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "#{i} C>S {:?}\n#{i} S>C {:?}\n",
                    c.request_text(),
                    c.reply_text()
                )
            })
            .collect()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, conv: Arc<Mutex<Conversation>>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let c2 = conv.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            {
                let mut c = c2.lock().unwrap();
                let room = CAP.saturating_sub(c.request.len()).min(n);
                c.request.extend_from_slice(&buf[..room]);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = sr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            {
                let mut c = conv.lock().unwrap();
                let room = CAP.saturating_sub(c.reply.len()).min(n);
                c.reply.extend_from_slice(&buf[..room]);
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libshout_source_dance_and_stream() {
    if !have_all("libshout_source_dance_and_stream", &["shout", "ffmpeg"]) {
        return;
    }
    let tmp = TempDir::new("shout");
    let media = tmp.join("tone.ogg");
    make_tone(&media, 30, &["-c:a", "libvorbis", "-q:a", "4"]).await;

    let srv = common::start(common::test_config()).await;
    let tap = Tap::start(srv.addr).await;
    let mut cmd = Command::new("shout");
    cmd.args([
        "--format",
        "ogg",
        "-H",
        "127.0.0.1",
        "-P",
        &tap.addr.port().to_string(),
        "--mount",
        "/shout.ogg",
        "--user",
        "source",
        "--pass",
        "hackme",
        "--tls-mode",
        "auto",
        "--station-name",
        "shout test",
    ]);
    let file = std::fs::File::open(&media).expect("open tone.ogg");
    let mut shout = Proc::spawn_with("shout", cmd, tmp.join("shout.log"), Stdio::from(file));
    wait_live(
        &srv.app.server,
        "/shout.ogg",
        &mut shout,
        Duration::from_secs(15),
    )
    .await;

    // The dance, as recorded by the tap.
    let convs = tap.conversations();
    let dump = tap.dump();
    let sources: Vec<&Conversation> = convs
        .iter()
        .filter(|c| c.request.starts_with(b"SOURCE /shout.ogg HTTP/1.0\r\n"))
        .collect();
    assert!(
        sources.len() >= 2,
        "expected a 401 challenge and a retry:\n{dump}"
    );
    let (first, last) = (sources[0], sources[sources.len() - 1]);
    assert!(
        !first
            .request_text()
            .to_ascii_lowercase()
            .contains("\r\nauthorization:"),
        "libshout's first SOURCE should be unauthenticated:\n{dump}"
    );
    assert!(
        first.reply.starts_with(b"HTTP/1.0 401 ")
            && first
                .reply_text()
                .contains("WWW-Authenticate: Basic realm=\"Icecast2 Server\"\r\n"),
        "the unauthenticated SOURCE must get icecast's 401 challenge:\n{dump}"
    );
    assert!(
        last.request_text()
            .contains(&format!("Authorization: Basic {}\r\n", common::SOURCE_AUTH)),
        "the retry should carry the credentials:\n{dump}"
    );
    assert!(
        last.reply.starts_with(b"HTTP/1.0 200 OK\r\n\r\n")
            && !last.reply[19..].starts_with(b"HTTP"),
        "the authenticated SOURCE must get exactly `HTTP/1.0 200 OK\\r\\n\\r\\n`:\n{dump}"
    );
    // `--tls-mode auto` makes libshout probe first: `OPTIONS *` with an Upgrade to TLS (closed
    // or answered, never 404/5xx), then `GET /admin/!POKE` (400), and only then SOURCE.
    assert!(
        convs
            .first()
            .is_some_and(|c| c.request.starts_with(b"OPTIONS * HTTP/1.1\r\n")),
        "libshout should open with its OPTIONS * probe:\n{dump}"
    );
    assert!(
        convs
            .iter()
            .any(|c| c.request.starts_with(b"GET /admin/!POKE ")),
        "libshout should send GET /admin/!POKE:\n{dump}"
    );
    for c in &convs {
        if c.request.starts_with(b"OPTIONS * ") || c.request.starts_with(b"GET /admin/!POKE ") {
            let fatal: [&[u8]; 4] = [
                b"HTTP/1.0 404",
                b"HTTP/1.0 5",
                b"HTTP/1.1 404",
                b"HTTP/1.1 5",
            ];
            let bad = fatal.iter().any(|p| c.reply.starts_with(p));
            assert!(!bad, "libshout probe got a fatal reply:\n{dump}");
        }
        if c.request.starts_with(b"GET /admin/!POKE ") {
            assert!(
                c.reply.starts_with(b"HTTP/1.0 400 "),
                "POKE must get 400:\n{dump}"
            );
        }
    }
    eprintln!("libshout conversation:\n{dump}");

    let m = srv.app.server.registry.get("/shout.ogg").expect("mount");
    let (ua, ct) = m.with_info(|i| (i.stream.user_agent.clone(), i.stream.content_type.clone()));
    assert!(ua.starts_with("libshout/"), "user agent {ua:?}");
    assert_eq!(ct, "application/ogg");

    let (head, body) = raw_get_ogg(srv.addr, "/shout.ogg", 4, Duration::from_secs(12)).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "head: {head}");
    assert!(head.contains("\r\nicy-name:shout test\r\n"), "head: {head}");
    assert_ogg_start(&body, b"\x01vorbis", b"\x03vorbis");
    assert_decodes(&format!("http://{}/shout.ogg", srv.addr), 3).await;
    shout.assert_running();
}
