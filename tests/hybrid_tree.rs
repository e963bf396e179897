//! The hybrid Icecast+P2PSP tree of issue 3, as separate `floecast` processes on loopback:
//! ffmpeg pushes Ogg Vorbis to A, whose mount splits for a team; B and C are peer mounts of
//! that team; C's peer mount splits again for a second team, joined by a mount of B and by a
//! stand-alone `floecast peer`. ffmpeg decodes every HTTP listener without an error.

mod common;
mod interop_support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::free_tcp_udp_port;
use interop_support::{OGG_VORBIS_ARGS, Proc, TempDir, assert_decodes, ffmpeg_source, have_all};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_floecast");

fn server(dir: &TempDir, name: &str, port: u16, mounts: &str) -> Proc {
    let path = dir.join(&format!("{name}.toml"));
    let config = format!(
        "[[listen]]\nport = {port}\nbind-address = \"127.0.0.1\"\n\n\
         [limits]\nsource-timeout = 30\n\n{mounts}"
    );
    std::fs::write(&path, config).expect("write config");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(&path).env("RUST_LOG", "info");
    Proc::spawn(name, cmd, log(dir, name))
}

fn log(dir: &TempDir, name: &str) -> std::path::PathBuf {
    dir.join(&format!("{name}.log"))
}

/// Wait until `mount` on `port` answers 200 and has sent some stream bytes.
async fn wait_streaming(port: u16, mount: &str, procs: &mut [&mut Proc], timeout: Duration) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + timeout;
    loop {
        for p in procs.iter_mut() {
            p.assert_running();
        }
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let req = format!("GET {mount} HTTP/1.0\r\n\r\n");
            let _ = s.write_all(req.as_bytes()).await;
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let read = async {
                while got.len() < 16 * 1024 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
            if got.starts_with(b"HTTP/1.0 200 OK") && got.len() >= 16 * 1024 {
                return;
            }
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = procs.iter().map(|p| p.log_text()).collect();
            panic!(
                "{mount} on port {port} is not streaming after {timeout:?}; logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn splitter(port: u16) -> String {
    format!("{{ role = \"splitter\", port = {port}, bind-address = \"127.0.0.1\" }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_and_a_stand_alone_peer_decode_everywhere() {
    if !have_all(
        "three_processes_and_a_stand_alone_peer_decode_everywhere",
        &["ffmpeg"],
    ) {
        return;
    }
    let dir = TempDir::new("tree");
    let (pa, pb, pc, pd) = (
        free_tcp_udp_port(),
        free_tcp_udp_port(),
        free_tcp_udp_port(),
        free_tcp_udp_port(),
    );
    let (team_a, team_c) = (free_tcp_udp_port(), free_tcp_udp_port());

    let mut a = server(
        &dir,
        "A",
        pa,
        &format!(
            "[[mount]]\nname = \"/tree.ogg\"\np2psp = {}\n",
            splitter(team_a)
        ),
    );
    let mut c = server(
        &dir,
        "C",
        pc,
        &format!(
            "[[mount]]\nname = \"/tree.ogg\"\n\
             p2psp = {{ role = \"peer\", splitter = \"127.0.0.1:{team_a}\", port = {team_c}, \
             bind-address = \"127.0.0.1\" }}\n"
        ),
    );
    let mut b = server(
        &dir,
        "B",
        pb,
        &format!(
            "[[mount]]\nname = \"/tree.ogg\"\n\
             p2psp = {{ role = \"peer\", splitter = \"127.0.0.1:{team_a}\" }}\n\n\
             [[mount]]\nname = \"/second.ogg\"\n\
             p2psp = {{ role = \"peer\", splitter = \"127.0.0.1:{team_c}\" }}\n"
        ),
    );
    let mut peer_cmd = Command::new(BIN);
    peer_cmd
        .args(["peer", &format!("127.0.0.1:{team_c}")])
        .args(["--listen", &pd.to_string(), "--bind", "127.0.0.1"]);
    let mut d = Proc::spawn("floecast peer", peer_cmd, log(&dir, "D"));

    let a_addr: SocketAddr = format!("127.0.0.1:{pa}").parse().expect("addr");
    // Wait for A to listen, then push a real-time Ogg Vorbis tone to it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(a_addr).await.is_err() {
        a.assert_running();
        assert!(Instant::now() < deadline, "A did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut src = Proc::spawn(
        "ffmpeg source",
        ffmpeg_source(a_addr, "/tree.ogg", OGG_VORBIS_ARGS),
        log(&dir, "source"),
    );
    let t = Duration::from_secs(20);
    wait_streaming(pa, "/tree.ogg", &mut [&mut a, &mut src], t).await;
    wait_streaming(pb, "/tree.ogg", &mut [&mut b], t).await;
    wait_streaming(pc, "/tree.ogg", &mut [&mut c], t).await;
    wait_streaming(pb, "/second.ogg", &mut [&mut b], t).await;
    wait_streaming(pd, "/stream", &mut [&mut d], t).await;

    for (what, port, mount) in [
        ("B, first team", pb, "/tree.ogg"),
        ("C, first team", pc, "/tree.ogg"),
        ("B, second team (split by C)", pb, "/second.ogg"),
        ("floecast peer, second team", pd, "/stream"),
    ] {
        eprintln!("decoding {what}");
        assert_decodes(&format!("http://127.0.0.1:{port}{mount}"), 3).await;
    }
    // Every process is still up, and the status of C shows both roles of its mount.
    for p in [&mut a, &mut b, &mut c, &mut d] {
        p.assert_running();
    }
    // C's mount is both: it serves the second team (B's mount and the stand-alone peer)
    // and belongs to the first.
    let status = http_get(pc, "/api/status").await;
    let body = status.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {status}"));
    let team = json["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mount"] == "/tree.ogg"))
        .map(|m| m["p2psp"].clone())
        .unwrap_or_default();
    assert_eq!(team["role"], "splitter", "{body}");
    assert_eq!(team["peers"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(team["upstream"]["role"], "peer", "{body}");
    assert_eq!(team["upstream"]["joined"], true, "{body}");
}

async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
