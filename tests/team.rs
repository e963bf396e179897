//! P2PSP teams over real loopback UDP: a splitter mount feeding a team of peers, each of
//! which must reassemble the source's bytes exactly while the splitter sends one copy.

mod common;

use std::time::Duration;

use common::*;
use floecast::config::{MountConfig, P2pspConfig};
use floecast::team::TeamState;
use floecast::team::peer::{Output, PeerLink};
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(5);

fn splitter_mount(name: &str) -> MountConfig {
    MountConfig {
        name: name.into(),
        p2psp: Some(P2pspConfig::Splitter {
            port: 0,
            bind_address: Some("127.0.0.1".into()),
            max_peers: 100,
            buffer: 256,
            max_chunk: 16_384,
            compat: false,
        }),
        ..Default::default()
    }
}

async fn splitter_addr(srv: &TestServer, mount: &str) -> String {
    let mut addr = None;
    wait_for("splitter bound", T, || {
        addr = match srv.app.server.teams.get(mount) {
            Some(TeamState::Splitter { local: Some(a), .. }) => Some(a),
            _ => None,
        };
        addr.is_some()
    })
    .await;
    addr.map(|a| a.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_peers_reassemble_the_stream_and_the_splitter_sends_one_copy() {
    let mut config = test_config();
    config.mounts.push(splitter_mount("/team.mp3"));
    let srv = start(config).await;
    let addr = splitter_addr(&srv, "/team.mp3").await;
    let mut src = source(
        srv.addr,
        "/team.mp3",
        "audio/mpeg",
        "ice-name: Team Radio\r\n",
    )
    .await;
    // Some stream before anyone joins, so joins get a burst.
    let stream = mp3_frames(600);
    let (before, after) = stream.split_at(100 * 417);
    src.write_all(before).await.unwrap();
    let mount = srv.app.server.registry.get("/team.mp3").unwrap();
    wait_for("queued", T, || mount.queued_bytes() > 30_000).await;

    let mut collectors = Vec::new();
    for _ in 0..50 {
        let mut link = PeerLink::join(&addr).await.expect("join");
        assert_eq!(link.info.name, "Team Radio");
        assert_eq!(link.info.content_type, "audio/mpeg");
        collectors.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut skipped = 0;
            loop {
                match tokio::time::timeout(Duration::from_secs(3), link.next()).await {
                    Ok(Output::Data(d)) => got.extend_from_slice(&d),
                    Ok(Output::Skipped) => skipped += 1,
                    Ok(Output::Header(_)) => {}
                    Ok(Output::Gone) | Err(_) => break,
                }
            }
            link.leave().await;
            (got, skipped)
        }));
    }
    // The rest of the stream, at a steady pace, once everyone is in.
    for part in after.chunks(417 * 10) {
        src.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pushed_after = confirmed(after).len();
    for (i, c) in collectors.into_iter().enumerate() {
        let (got, skipped) = c.await.unwrap();
        assert_eq!(skipped, 0, "peer {i} lost chunks");
        // Byte-identical: one contiguous slice of the source's stream.
        let start = stream
            .windows(got.len().min(64))
            .position(|w| w == &got[..got.len().min(64)])
            .expect("peer data is from the stream");
        assert_bytes(
            &got,
            &stream[start..start + got.len()],
            &format!("peer {i}"),
        );
        // And everything sent after the joins arrived.
        assert!(
            start + got.len() >= before.len() + pushed_after,
            "peer {i} stopped early: {} of {}",
            start + got.len(),
            before.len() + pushed_after
        );
    }
    // One copy: the splitter's egress is the stream once (plus a little protocol).
    let stats = match srv.app.server.teams.get("/team.mp3") {
        Some(TeamState::Splitter { stats: Some(s), .. }) => s,
        other => panic!("no splitter stats: {other:?}"),
    };
    assert!(stats.bytes_pushed > 0);
    let ratio = stats.bytes_sent as f64 / stats.bytes_pushed as f64;
    assert!(
        ratio <= 1.05,
        "splitter egress {} for {} pushed ({ratio:.3}x)",
        stats.bytes_sent,
        stats.bytes_pushed
    );
}
