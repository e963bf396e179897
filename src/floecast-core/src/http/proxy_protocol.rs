//! The PROXY protocol (HAProxy's spec, versions 1 and 2): the header a load balancer puts in
//! front of a connection to say who the client really is. Two-phase and sans-IO: `parse`
//! says how many bytes it needs before it can decide, so the driver never reads past the
//! header into the request that follows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The version 2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The version 1 preamble.
const V1_PREAMBLE: &[u8] = b"PROXY ";
/// Longest version 1 line, CRLF included (the spec's bound).
pub const V1_MAX: usize = 107;
/// Longest version 2 header we accept: the fixed 16 bytes plus addresses and TLVs. The spec
/// allows 64 KiB; load balancers send well under 1 KiB.
pub const V2_MAX: usize = 16 + 2048;

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address, or `None` when the header says to use the connection's own
    /// (v1 `UNKNOWN`, v2 `LOCAL` health checks, unspecified or UNIX families).
    pub source: Option<SocketAddr>,
    /// Its length in bytes: the request starts right after.
    pub len: usize,
}

/// What `parse` made of the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Complete(ProxyHeader),
    /// Undecided: read until the buffer holds `need` bytes (never more than the header).
    Partial {
        need: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    Missing,
    #[error("PROXY header too long")]
    TooLong,
    #[error("malformed PROXY v1 line")]
    BadV1,
    #[error("malformed PROXY v2 header")]
    BadV2,
}

/// Parse the start of a connection as a PROXY header.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let starts = |sig: &[u8]| buf.len().min(sig.len()) == common_prefix(buf, sig);
    if starts(&V2_SIGNATURE) && buf.len() >= V1_PREAMBLE.len().min(V2_SIGNATURE.len()) {
        return parse_v2(buf);
    }
    if starts(V1_PREAMBLE) && buf.len() >= V1_PREAMBLE.len() {
        return parse_v1(buf);
    }
    if buf.len() < V1_PREAMBLE.len() && (starts(&V2_SIGNATURE) || starts(V1_PREAMBLE)) {
        return Ok(Parsed::Partial {
            need: V1_PREAMBLE.len(),
        });
    }
    Err(ProxyError::Missing)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`, or `PROXY UNKNOWN…\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::TooLong);
        }
        // One byte at a time: the line's end is only known when it arrives.
        return Ok(Parsed::Partial {
            need: buf.len() + 1,
        });
    };
    let len = end + 2;
    if len > V1_MAX {
        return Err(ProxyError::TooLong);
    }
    let line = std::str::from_utf8(&buf[V1_PREAMBLE.len()..end]).map_err(|_| ProxyError::BadV1)?;
    let mut fields = line.split(' ');
    let source = match fields.next() {
        Some("UNKNOWN") => None,
        Some(proto @ ("TCP4" | "TCP6")) => {
            let mut next = || fields.next().ok_or(ProxyError::BadV1);
            let (src, _dst, sport, _dport) = (next()?, next()?, next()?, next()?);
            let ip: IpAddr = src.parse().map_err(|_| ProxyError::BadV1)?;
            if ip.is_ipv4() != (proto == "TCP4") {
                return Err(ProxyError::BadV1);
            }
            let port = parse_port(sport)?;
            if fields.next().is_some() {
                return Err(ProxyError::BadV1);
            }
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyError::BadV1),
    };
    Ok(Parsed::Complete(ProxyHeader { source, len }))
}

/// A decimal port without sign or leading zeros, as the spec writes them.
fn parse_port(s: &str) -> Result<u16, ProxyError> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ProxyError::BadV1);
    }
    s.parse().map_err(|_| ProxyError::BadV1)
}

/// The binary header: signature, version/command, family/transport, length, addresses, TLVs.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < 16 {
        return Ok(Parsed::Partial { need: 16 });
    }
    if buf[..12] != V2_SIGNATURE {
        return Err(ProxyError::Missing);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(ProxyError::BadV2);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < len {
        return Ok(Parsed::Partial { need: len });
    }
    let body = &buf[16..len];
    // LOCAL: the balancer's own connection (a health check); use the real address.
    if command == 0 {
        return Ok(Parsed::Complete(ProxyHeader { source: None, len }));
    }
    let (family, transport) = (buf[13] >> 4, buf[13] & 0x0f);
    if transport > 2 {
        return Err(ProxyError::BadV2);
    }
    let source = match family {
        1 => {
            let a = body.get(..12).ok_or(ProxyError::BadV2)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        2 => {
            let a = body.get(..36).ok_or(ProxyError::BadV2)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // Unspecified or UNIX sockets carry no client address we can use.
        0 | 3 => None,
        _ => return Err(ProxyError::BadV2),
    };
    Ok(Parsed::Complete(ProxyHeader { source, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> ProxyHeader {
        match parse(buf) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v1_examples_from_the_spec() {
        let line = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\nGET / HTTP/1.0\r\n";
        let h = complete(line);
        assert_eq!(h.source, Some("255.255.255.255:65535".parse().unwrap()));
        assert_eq!(&line[h.len..], b"GET / HTTP/1.0\r\n");
        let v6 = b"PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(parse(v6), Err(ProxyError::BadV1));
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4242 80\r\n";
        assert_eq!(
            complete(v6).source,
            Some("[2001:db8::1]:4242".parse().unwrap())
        );
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            complete(unknown),
            ProxyHeader {
                source: None,
                len: 15
            }
        );
        let unknown = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(complete(unknown).source, None);
        // The worst case from the spec is exactly 107 bytes.
        let mut worst = b"PROXY UNKNOWN ".to_vec();
        worst.resize(105, b'f');
        worst.extend_from_slice(b"\r\n");
        assert_eq!(complete(&worst).len, 107);
    }

    #[test]
    fn v1_is_read_one_byte_at_a_time_and_capped() {
        assert_eq!(parse(b""), Ok(Parsed::Partial { need: 6 }));
        assert_eq!(parse(b"PRO"), Ok(Parsed::Partial { need: 6 }));
        assert_eq!(parse(b"PROXY TCP4 1"), Ok(Parsed::Partial { need: 13 }));
        assert_eq!(parse(&[b'P'; 1]), Ok(Parsed::Partial { need: 6 }));
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX, b'x');
        assert_eq!(parse(&long), Err(ProxyError::TooLong));
        assert_eq!(parse(b"GET / HTTP/1.0\r\n"), Err(ProxyError::Missing));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
            Err(ProxyError::BadV1)
        );
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
            Err(ProxyError::BadV1)
        );
        assert_eq!(parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"), Err(ProxyError::BadV1));
        assert_eq!(
            parse(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(ProxyError::BadV1)
        );
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_addresses_local_and_tlvs() {
        // TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.1:443, then a TLV (ALPN).
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
        let mut header = v2(1, 0x11, &body);
        let total = header.len();
        header.extend_from_slice(b"GET /");
        let h = complete(&header);
        assert_eq!(h.source, Some("192.0.2.1:56324".parse().unwrap()));
        assert_eq!(h.len, total);
        // TCP over IPv6.
        let mut body = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
        assert_eq!(
            complete(&v2(1, 0x21, &body)).source,
            Some("[2001:db8::7]:4660".parse().unwrap())
        );
        // LOCAL (a health check) and UNSPEC use the connection's own address.
        assert_eq!(complete(&v2(0, 0x00, &[])).source, None);
        assert_eq!(complete(&v2(1, 0x00, &[])).source, None);
    }

    /// What HAProxy 2.6 (Debian 12) sent for curl from 127.0.0.5, `send-proxy-v2` and
    /// `send-proxy` to 127.0.0.1, and for its own `option httpchk` health check (v2 `LOCAL`),
    /// captured in tests/proxy_haproxy.rs set-ups: the request right after.
    const HAPROXY_V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x05\x7f\x00\x00\x01\xae\x6c\x4a\x43GET /x HTTP/1.1\r\n";
    const HAPROXY_V1: &[u8] = b"PROXY TCP4 127.0.0.5 127.0.0.1 54942 19012\r\nGET /x HTTP/1.1\r\n";
    const HAPROXY_V2_CHECK: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00GET /x HTTP/1.1\r\n";
    /// With `proxy-v2-options crc32c,unique-id` (and `unique-id-format %{+X}o%ci`): two TLVs.
    const HAPROXY_V2_TLVS: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x1e\x7f\x00\x00\x05\x7f\x00\x00\x01\xb4\x92\x4a\x43\x03\x00\x04\x2e\xbb\xd0\x02\x05\x00\x087F000005GET /x HTTP/1.1\r\n";

    #[test]
    fn haproxy_headers() {
        let client = Some(SocketAddr::from(([127, 0, 0, 5], 44652)));
        let v1_client = Some(SocketAddr::from(([127, 0, 0, 5], 54942)));
        for (bytes, source, len) in [
            (HAPROXY_V2, client, 28),
            (HAPROXY_V1, v1_client, 44),
            (HAPROXY_V2_CHECK, None, 16),
            (
                HAPROXY_V2_TLVS,
                Some(SocketAddr::from(([127, 0, 0, 5], 46226))),
                46,
            ),
        ] {
            let h = complete(bytes);
            assert_eq!((h.source, h.len), (source, len));
            assert_eq!(&bytes[h.len..], b"GET /x HTTP/1.1\r\n");
            // Byte by byte, the parser never asks past the header.
            let mut have = 0;
            while let Ok(Parsed::Partial { need }) = parse(&bytes[..have]) {
                assert!(need > have && need <= len, "{have} -> {need}");
                have = need;
            }
            assert_eq!(have, len);
        }
    }

    #[test]
    fn v2_partial_bad_and_oversized() {
        let header = v2(1, 0x11, &[10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2]);
        assert_eq!(parse(&header[..6]), Ok(Parsed::Partial { need: 16 }));
        assert_eq!(parse(&header[..16]), Ok(Parsed::Partial { need: 28 }));
        assert_eq!(parse(&header[..2]), Ok(Parsed::Partial { need: 6 }));
        // Too short for its family; version 1 in the binary form; an unknown command.
        assert_eq!(parse(&v2(1, 0x11, &[1, 2, 3])), Err(ProxyError::BadV2));
        let mut bad = header.clone();
        bad[12] = 0x11;
        assert_eq!(parse(&bad), Err(ProxyError::BadV2));
        bad[12] = 0x22;
        assert_eq!(parse(&bad), Err(ProxyError::BadV2));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Err(ProxyError::TooLong));
    }
}
