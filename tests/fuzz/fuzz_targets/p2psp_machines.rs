//! The P2PSP machines as the internet reaches them: a splitter, a joined peer and a Gen C peer
//! get arbitrary datagrams from the splitter's address, a neighbour's and a stranger's, with
//! time moving on, and every transmit, event and timer is drained as the runtime would.
//! Sender byte: bits 0-1 pick the address; 0x80 sends to the splitter, 0x20 to the Gen C peer
//! (else the native peer); 0x40 also pushes the datagram as a stream chunk.
#![no_main]

use std::time::{Duration, Instant};

use floecast_core::p2psp::PeerMachine;
use floecast_fuzz::{gen_c_peer, next_record, sender, team};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let start = Instant::now();
    let Some((mut splitter, mut peer)) = team(start) else {
        return;
    };
    let mut gen_c = gen_c_peer(start);
    let mut now = start;
    let mut rest = input;
    let mut steps = 0;
    while let Some(((from, dt, datagram), tail)) = next_record(rest) {
        rest = tail;
        steps += 1;
        if steps > 2000 {
            break;
        }
        now += Duration::from_millis(dt as u64 * 4);
        let addr = sender(from);
        if from & 0x80 != 0 {
            splitter.handle_datagram(now, addr, datagram);
        } else if from & 0x20 != 0 {
            gen_c.handle_datagram(now, addr, datagram);
        } else {
            peer.handle_datagram(now, addr, datagram);
        }
        if from & 0x40 != 0 {
            let _ = splitter.push_chunk(now, bytes::Bytes::copy_from_slice(datagram));
        }
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            peer.handle_timeout(now);
        }
        if splitter.poll_timeout().is_some_and(|t| t <= now) {
            splitter.handle_timeout(now);
        }
        if gen_c.poll_timeout().is_some_and(|t| t <= now) {
            gen_c.handle_timeout(now);
        }
        // Bounded output: what one input can make the machines send or report.
        let mut out = 0;
        while peer.poll_transmit().is_some()
            || splitter.poll_transmit().is_some()
            || gen_c.poll_transmit().is_some()
        {
            out += 1;
            assert!(out < 100_000, "transmits without end");
        }
        while peer.poll_event().is_some()
            || splitter.poll_event().is_some()
            || gen_c.poll_event().is_some()
        {
            out += 1;
            assert!(out < 200_000, "events without end");
        }
    }
    peer.leave(now);
    gen_c.leave(now);
    let _ = peer.stats();
    let _ = gen_c.stats();
    let _ = splitter.stats();
});
