//! Native P2PSP teams beyond one IPv4 loopback: IPv6-only and dual-stack teams (splitter and
//! peer mounts in this process, on `::1` and `::`). ffmpeg pushes MP3 to the splitter's mount
//! and decodes every peer mount's HTTP listener without an error; the splitter's status lists
//! each member at the address family it joined with.

mod common;
mod interop_support;

use std::time::Duration;

use common::*;
use floecast::config::{MountConfig, P2pspConfig, SplitterSettings};
use floecast::team::TeamState;
use interop_support::{MP3_ARGS, TempDir, assert_decodes, ffmpeg_source_live, have_all};

const T: Duration = Duration::from_secs(10);

fn splitter_on(name: &str, bind: &str) -> MountConfig {
    MountConfig {
        name: name.into(),
        p2psp: Some(P2pspConfig::Splitter(SplitterSettings {
            port: 0,
            bind_address: Some(bind.into()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn peer_of(name: &str, splitter: &str) -> MountConfig {
    MountConfig {
        name: name.into(),
        p2psp: Some(P2pspConfig::Peer {
            compat: false,
            splitter: splitter.into(),
            serve: None,
            auth: Default::default(),
        }),
        ..Default::default()
    }
}

/// A splitter bound at `bind` fed by ffmpeg, and one peer mount (its own server) per entry of
/// `joins` (`host:port` forms, `{port}` replaced by the team port). Every peer mount decodes;
/// returns the members' endpoints as the splitter lists them.
async fn team_decodes(test: &str, bind: &str, joins: &[&str]) -> Vec<std::net::SocketAddr> {
    let dir = TempDir::new(test);
    let mut ca = test_config();
    ca.mounts.push(splitter_on("/reach.mp3", bind));
    let a = start(ca).await;
    let _source = ffmpeg_source_live(&a, "/reach.mp3", MP3_ARGS, dir.join("ffmpeg.log")).await;
    let port = splitter_addr(&a, "/reach.mp3").await.port();
    let members = || match a.app.server.tasks.teams.get("/reach.mp3") {
        Some(TeamState::Splitter { stats: Some(s), .. }) => s.peers,
        _ => Vec::new(),
    };
    // One at a time: each newcomer is told of the members before it, none overlap.
    let mut peers = Vec::new();
    for (k, j) in joins.iter().enumerate() {
        let mut c = test_config();
        c.mounts.push(peer_of(
            "/reach.mp3",
            &j.replace("{port}", &port.to_string()),
        ));
        peers.push(start(c).await);
        wait_for(&format!("member {k} admitted"), T, || {
            members().len() == k + 1
        })
        .await;
    }
    for (k, p) in peers.iter().enumerate() {
        wait_queued(
            p,
            "/reach.mp3",
            16 * 1024,
            &format!("peer mount {k} live"),
            T,
        )
        .await;
    }
    // Every member hears every other (directly, not relayed by the splitter).
    wait_for("every member hears every other", T, || {
        let m = members();
        m.len() == joins.len()
            && m.iter().all(|p| {
                !p.relayed
                    && p.report
                        .is_some_and(|r| r.neighbours as usize == joins.len() - 1 && r.lost == 0)
            })
    })
    .await;
    for p in &peers {
        assert_decodes(&format!("http://{}/reach.mp3", p.addr), 4).await;
    }
    members().into_iter().map(|p| p.addr).collect()
}

/// Splitter and peers on `::1` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_only_team_decodes() {
    if !have_all("an_ipv6_only_team_decodes", &["ffmpeg"]) {
        return;
    }
    let members = team_decodes("v6-only", "::1", &["[::1]:{port}", "[::1]:{port}"]).await;
    assert!(members.iter().all(|a| a.is_ipv6()), "{members:?}");
}

/// The splitter on `::` (both families); one peer joins over IPv4, one over IPv6, in both
/// orders: the IPv4 one is listed as IPv4 (not as an IPv4-mapped IPv6 address), and the two
/// meet over IPv4 (the IPv6 peer's socket is dual-stack, the IPv4 one's is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_team_decodes() {
    if !have_all("a_dual_stack_team_decodes", &["ffmpeg"]) {
        return;
    }
    let members = team_decodes(
        "dual-stack",
        "::",
        &["[::1]:{port}", "127.0.0.1:{port}", "[::1]:{port}"],
    )
    .await;
    let v4 = members.iter().filter(|a| a.is_ipv4()).count();
    assert_eq!((v4, members.len()), (1, 3), "{members:?}");
}
