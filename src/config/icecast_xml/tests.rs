//! Whole icecast.xml documents converted and loaded: every option mapped or warned about.

use super::*;
use crate::config::{CertificateFiles, Config, Severity, TlsMode};

fn convert(xml: &str) -> Converted {
    to_toml(xml, "icecast.xml").unwrap_or_else(|e| panic!("{e}"))
}

fn load(xml: &str) -> Config {
    let c = convert(xml);
    c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
}

/// Does some warning contain `needle` (as displayed)?
fn warned(c: &Converted, needle: &str) -> bool {
    c.warnings.iter().any(|w| w.to_string().contains(needle))
}

#[test]
fn debian_sample_config_equals_the_embedded_defaults() {
    // The shape of Debian's /etc/icecast2/icecast.xml (comments and all).
    let xml = include_str!("../../../tests/data/icecast-debian.xml");
    let c = convert(xml);
    let config = Config::from_toml_str(&c.toml, "converted").unwrap();
    let d = Config::default();
    assert_eq!(config.limits, d.limits);
    assert_eq!(config.auth, d.auth);
    assert_eq!(config.listen.len(), 1);
    assert_eq!(config.listen[0].port, 8000);
    assert_eq!(config.http_headers, d.http_headers);
    assert_eq!(config.hostname, "localhost");
    // Its logging and paths sections are mapped or explained.
    assert!(
        config
            .logging
            .access_log
            .as_deref()
            .is_some_and(|p| p.ends_with("access.log"))
    );
    assert!(
        config
            .logging
            .error_log
            .as_deref()
            .is_some_and(|p| p.ends_with("error.log"))
    );
    assert!(warned(&c, "icecast2's own error log"), "{:?}", c.warnings);
    assert!(warned(&c, "<security> ignored"), "{:?}", c.warnings);
}

#[test]
fn rich_config_maps_every_option() {
    let xml = r#"<icecast>
  <location>Berlin</location><admin>ops@example.org</admin><hostname>radio.example.org</hostname>
  <server-id>My Icecast</server-id>
  <limits><clients>5000</clients><sources>10</sources><queue-size>1048576</queue-size>
<client-timeout>30</client-timeout><header-timeout>20</header-timeout><source-timeout>5</source-timeout>
<burst-on-connect>1</burst-on-connect><burst-size>131072</burst-size></limits>
  <authentication><source-password>s3cret</source-password><relay-user>slave</relay-user>
<relay-password>r3lay</relay-password><admin-user>boss</admin-user><admin-password>adm1n</admin-password></authentication>
  <listen-socket><port>8000</port><shoutcast-mount>/live.mp3</shoutcast-mount></listen-socket>
  <listen-socket><port>8443</port><ssl>1</ssl></listen-socket>
  <listen-socket><port>9000</port><bind-address>::1</bind-address></listen-socket>
  <http-headers><header name="X-Station" value="Example"/><header name="X-Err" value="1" status="404"/></http-headers>
  <relay><server>up.example.org</server><port>8000</port><mount>/a</mount></relay>
  <relay><server>10.0.0.2</server><port>8001</port><mount>/b.ogg</mount><local-mount>/c.ogg</local-mount>
<username>source</username><password>pw</password><relay-shoutcast-metadata>0</relay-shoutcast-metadata>
<on-demand>1</on-demand><bind>127.0.0.1</bind></relay>
  <relays-on-demand>0</relays-on-demand>
  <master-server>master.example.org</master-server><master-server-port>8010</master-server-port>
  <master-username>slave</master-username><master-password>mpw</master-password>
  <master-update-interval>60</master-update-interval><master-ssl-port>8443</master-ssl-port>
  <mount type="normal">
<mount-name>/live/*</mount-name><username>dj</username><password>djpw</password>
<max-listeners>100</max-listeners><max-listener-duration>3600</max-listener-duration>
<dump-file>/tmp/dump-%Y.mp3</dump-file><intro>/intro.mp3</intro>
<fallback-mount>/fallback.mp3</fallback-mount><fallback-override>1</fallback-override>
<fallback-when-full>1</fallback-when-full><hidden>1</hidden><public>-1</public><no-yp>1</no-yp>
<stream-name>Live &amp; Loud</stream-name><stream-description>desc</stream-description>
<stream-url>http://example.org</stream-url><genre>Rock</genre><bitrate>128</bitrate>
<type>audio/mpeg</type><subtype>mp3</subtype><charset>UTF-8</charset>
<mp3-metadata-interval>8192</mp3-metadata-interval><burst-size>32768</burst-size>
<queue-size>262144</queue-size><source-timeout>30</source-timeout>
<on-connect>/usr/local/bin/on</on-connect><on-disconnect>/usr/local/bin/off</on-disconnect>
<http-headers><header name="X-Mount" value="live"/></http-headers>
<authentication type="url"><option name="listener_add" value="https://auth.example/add"/></authentication>
  </mount>
  <mount type="default"><max-listeners>50</max-listeners></mount>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>/var/log/icecast2</logdir>
<webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
<pidfile>/run/icecast.pid</pidfile><alias source="/" destination="/status.xsl"/>
<ssl-certificate>/etc/ssl/radio.pem</ssl-certificate><ssl-private-key>/etc/ssl/radio.key</ssl-private-key></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>4</loglevel>
<logsize>10000</logsize></logging>
  <security><chroot>0</chroot></security>
</icecast>"#;
    let c = convert(xml);
    let config =
        Config::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    assert_eq!(config.location, "Berlin");
    assert_eq!(config.hostname, "radio.example.org");
    assert_eq!(config.server_id, "My Icecast");
    assert_eq!(config.limits.clients, 5000);
    assert_eq!(config.limits.burst_size, 131_072);
    assert_eq!(config.limits.header_timeout.as_secs(), 20);
    assert_eq!(config.auth.admin_user, "boss");
    assert_eq!(config.auth.relay_user, "slave");
    // The TLS socket takes TLS only, with the certificate and KH's separate key.
    assert_eq!(
        config.listen.iter().map(|l| l.port).collect::<Vec<_>>(),
        vec![8000, 8443, 9000]
    );
    assert_eq!(
        config.listen.iter().map(|l| l.tls).collect::<Vec<_>>(),
        vec![TlsMode::Auto, TlsMode::Required, TlsMode::Auto]
    );
    assert_eq!(
        config.tls,
        vec![CertificateFiles {
            certificate: "/etc/ssl/radio.pem".into(),
            private_key: Some("/etc/ssl/radio.key".into()),
        }]
    );
    assert_eq!(
        config.listen[0].shoutcast_mount.as_deref(),
        Some("/live.mp3")
    );
    assert_eq!(config.listen[2].bind_address.as_deref(), Some("::1"));
    assert_eq!(config.http_headers.len(), 2);
    assert_eq!(config.http_headers[1].status, Some(404));
    let live = config.mount("/live/a").expect("glob mount");
    assert_eq!(live.username.as_deref(), Some("dj"));
    assert_eq!(live.max_listeners, Some(100));
    assert_eq!(
        live.max_listener_duration,
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(live.stream_name.as_deref(), Some("Live & Loud"));
    assert_eq!(live.content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(live.mp3_metadata_interval, Some(8192));
    assert_eq!(
        (live.fallback_override, live.fallback_when_full, live.hidden),
        (Some(true), Some(true), Some(true))
    );
    // <public>-1 leaves it unset, and the <no-yp>1 after it means "not public".
    assert_eq!(live.public, Some(false));
    assert_eq!(live.http_headers.len(), 1);
    assert_eq!(
        config.mount("/other").and_then(|m| m.max_listeners),
        Some(50)
    );
    assert_eq!(
        config.logging.access_log.as_deref(),
        Some(Path::new("/var/log/icecast2/access.log"))
    );
    assert_eq!(
        config.logging.error_log.as_deref(),
        Some(Path::new("/var/log/icecast2/error.log"))
    );
    assert_eq!(config.logging.level.as_deref(), Some("debug"));
    assert_eq!(
        config.paths.webroot.as_deref(),
        Some(Path::new("/usr/share/icecast2/web"))
    );
    assert_eq!(config.relays.len(), 2);
    let a = &config.relays[0];
    assert_eq!(
        (
            a.server.as_str(),
            a.port,
            a.mount.as_str(),
            a.local_mount.as_str()
        ),
        ("up.example.org", 8000, "/a", "/a")
    );
    assert!(a.relay_metadata && !a.on_demand);
    let b = &config.relays[1];
    assert_eq!(
        (b.server.as_str(), b.port, b.local_mount.as_str()),
        ("10.0.0.2", 8001, "/c.ogg")
    );
    assert_eq!(
        (
            b.username.as_deref(),
            b.password.as_deref(),
            b.bind.as_deref()
        ),
        (Some("source"), Some("pw"), Some("127.0.0.1"))
    );
    assert!(!b.relay_metadata && b.on_demand);
    let m = config.master.as_ref().expect("master");
    assert_eq!(
        (
            m.server.as_str(),
            m.port,
            m.username.as_str(),
            m.password.as_str()
        ),
        ("master.example.org", 8010, "slave", "mpw")
    );
    assert_eq!(m.update_interval.as_secs(), 60);
    assert_eq!(m.tls.port, Some(8443));
    assert!(!warned(&c, "<relay>") && !warned(&c, "<master-server>"));
    assert!(!warned(&c, "<listen-socket.ssl") && !warned(&c, "<master-ssl-port"));
    for ignored in [
        "limits.client-timeout",
        "paths.adminroot",
        "paths.alias",
        "logging.logsize",
        "security",
    ] {
        assert!(
            warned(&c, &format!("<{ignored}")),
            "no warning for {ignored}: {:?}",
            c.warnings
        );
    }
    // Every warning is also a comment in the TOML.
    assert!(c.toml.contains("# line "), "{}", c.toml);
}

#[test]
fn log_files_are_found_under_logdir_and_dash_is_standard_error() {
    let logging = |paths: &str, logging: &str| {
        load(&format!(
            "<icecast><paths>{paths}</paths><logging>{logging}</logging></icecast>"
        ))
        .logging
    };
    let l = logging(
        "<logdir>/srv/log/</logdir>",
        "<errorlog>e.log</errorlog><accesslog>/abs/a.log</accesslog><loglevel>2</loglevel>",
    );
    assert_eq!(l.error_log.as_deref(), Some(Path::new("/srv/log/e.log")));
    assert_eq!(l.access_log.as_deref(), Some(Path::new("/abs/a.log")));
    assert_eq!(l.level.as_deref(), Some("warn"));
    // Without <logdir>, as written; "-" (icecast2's standard error) leaves floecast's default.
    let l = logging("", "<errorlog>e.log</errorlog><loglevel>1</loglevel>");
    assert_eq!(l.error_log.as_deref(), Some(Path::new("e.log")));
    assert_eq!(l.level.as_deref(), Some("error"));
    let c = convert(
        "<icecast><paths><logdir>/l</logdir></paths><logging><errorlog>-</errorlog>\
         <accesslog>-</accesslog><loglevel>3</loglevel></logging></icecast>",
    );
    let l = c.load().unwrap().logging;
    assert_eq!((l.error_log, l.access_log), (None, None));
    assert_eq!(l.level.as_deref(), Some("info"));
    assert!(
        warned(&c, "<logging.errorlog> \"-\": standard error"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn access_options_map_onto_the_access_section() {
    let xml = "<icecast><x-forwarded-for>10.0.0.1</x-forwarded-for>\
        <x-forwarded-for>192.168.0.0/16</x-forwarded-for><x-forwarded-for>proxy</x-forwarded-for>\
        <paths><deny-ip>/etc/icecast2/deny</deny-ip><allow-ip>/etc/icecast2/allow</allow-ip></paths>\
        <mount><mount-name>/m</mount-name><max-listener-duration>60</max-listener-duration></mount>\
        <mount><mount-name>/n</mount-name><max-listener-duration>0</max-listener-duration></mount>\
        </icecast>";
    let c = convert(xml);
    let config = c.load().unwrap();
    let a = &config.access;
    assert!(a.is_trusted_proxy("10.0.0.1".parse().unwrap()));
    assert!(a.is_trusted_proxy("192.168.7.7".parse().unwrap()));
    assert!(!a.is_trusted_proxy("10.0.0.2".parse().unwrap()));
    assert_eq!(
        a.deny_ip_file.as_deref(),
        Some(Path::new("/etc/icecast2/deny"))
    );
    assert_eq!(
        a.allow_ip_file.as_deref(),
        Some(Path::new("/etc/icecast2/allow"))
    );
    assert!(warned(&c, "<x-forwarded-for>"), "{:?}", c.warnings);
    assert!(!warned(&c, "<paths.deny-ip>") && !warned(&c, "<paths.allow-ip>"));
    let m = config.mount("/m").unwrap();
    assert_eq!(
        m.max_listener_duration,
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(config.mount("/n").unwrap().max_listener_duration, None);
}

#[test]
fn relays_on_demand_and_incomplete_master() {
    let c = convert(
        "<icecast><relays-on-demand>1</relays-on-demand><master-server>m</master-server>\
         <relay><mount>/x</mount><bogus>1</bogus></relay></icecast>",
    );
    let config =
        Config::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    assert!(config.relays_on_demand);
    assert!(config.master.is_none());
    // The relay inherits relays-on-demand and gets the sample's port with a warning.
    let r = &config.relays[0];
    assert!(r.on_demand);
    assert_eq!(
        (r.server.as_str(), r.port, r.mount.as_str()),
        ("127.0.0.1", 8000, "/x")
    );
    for w in [
        "<master-server> ignored",
        "<relay> has no <port>",
        "<relay.bogus>",
    ] {
        assert!(warned(&c, w), "{w}: {:?}", c.warnings);
    }
}

#[test]
fn shoutcast_compat_socket_maps_to_port_plus_one() {
    let config = load(
        "<icecast><shoutcast-mount>/sc</shoutcast-mount><listen-socket><port>8000</port></listen-socket>\
         <listen-socket><port>8001</port><shoutcast-compat>1</shoutcast-compat></listen-socket></icecast>",
    );
    assert_eq!(config.listen.len(), 1);
    assert_eq!(config.listen[0].shoutcast_mount.as_deref(), Some("/sc"));
}

#[test]
fn unused_global_shoutcast_mount_is_reported() {
    let c = convert("<icecast><shoutcast-mount>/sc</shoutcast-mount></icecast>");
    assert!(warned(&c, "<shoutcast-mount> ignored"), "{:?}", c.warnings);
    let c = convert(
        "<icecast><shoutcast-mount>/sc</shoutcast-mount><listen-socket><port>8000</port></listen-socket>\
         <listen-socket><port>8001</port><shoutcast-compat>1</shoutcast-compat></listen-socket></icecast>",
    );
    assert!(!warned(&c, "<shoutcast-mount>"), "{:?}", c.warnings);
}

#[test]
fn legacy_port_and_burst_off() {
    let config = load(
        "<icecast><port>8100</port><source-password>x</source-password>\
         <limits><burst-size>65535</burst-size><burst-on-connect>0</burst-on-connect></limits></icecast>",
    );
    assert_eq!(config.listen[0].port, 8100);
    assert_eq!(config.auth.source_password, "x");
    assert_eq!(config.limits.burst_size, 0);
    // icecast2 applies the two in file order: a <burst-size> after <burst-on-connect>0
    // sets the burst again (the sample config's order), which is worth a warning.
    let c = convert(
        "<icecast><limits><burst-on-connect>0</burst-on-connect>\
         <burst-size>65535</burst-size></limits></icecast>",
    );
    assert_eq!(c.load().map(|c| c.limits.burst_size).ok(), Some(65535));
    assert!(
        warned(&c, "<limits.burst-on-connect> 0 is overridden"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn errors_name_element_and_line() {
    let e = to_toml(
        "<icecast>\n<limits>\n<clients>many</clients>\n</limits>\n</icecast>",
        "ice.xml",
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("line 3") && s.contains("limits.clients") && s.contains("many"),
        "{s}"
    );
    assert!(to_toml("<icecast><limits>", "x").is_err());
    assert!(to_toml("<notice/>", "x").is_err());
    assert!(to_toml("garbage", "x").is_err());
    let deep = "<icecast>".to_string() + &"<a>".repeat(40) + &"</a>".repeat(40) + "</icecast>";
    assert!(to_toml(&deep, "x").is_err());
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,300}") {
        let _ = to_toml(&s, "x");
        let _ = to_toml(&format!("<icecast>{s}</icecast>"), "x");
    }
}

#[test]
fn listener_authentication_maps() {
    let xml = r#"<icecast>
  <mount type="normal"><mount-name>/members.mp3</mount-name>
<authentication type="htpasswd">
  <option name="filename" value="/etc/icecast2/members.htpasswd"/>
  <option name="allow_duplicate_users" value="1"/>
  <option name="bogus" value="x"/>
</authentication>
<http-headers><header name="X-M" value="1"/></http-headers>
  </mount>
  <mount type="normal"><mount-name>/plain.mp3</mount-name>
<authentication type="htpasswd"><option name="filename" value="users"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/url.mp3</mount-name>
<authentication type="url">
  <option name="listener_add" value="http://auth.example/add.php"/>
  <option name="listener_remove" value="http://auth.example/remove.php"/>
  <option name="username" value="u"/><option name="password" value="p"/>
  <option name="auth_header" value="icecast-auth-user: 1"/>
  <option name="headers" value="x-forwarded-for, referer"/>
  <option name="mount_add" value="http://auth.example/mount_add.php"/>
</authentication>
  </mount>
  <mount type="normal"><mount-name>/tls.mp3</mount-name>
<authentication type="url"><option name="listener_add" value="https://a/b"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/ftp.mp3</mount-name>
<authentication type="url"><option name="listener_add" value="ftp://a/b"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/nofile.mp3</mount-name>
<authentication type="htpasswd"/>
  </mount>
  <mount type="normal"><mount-name>/ldap.mp3</mount-name>
<authentication type="ldap"/>
  </mount>
</icecast>"#;
    let c = convert(xml);
    let config =
        Config::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    let auth = |m: &str| config.mount(m).and_then(|m| m.authentication.clone());
    assert_eq!(
        auth("/members.mp3"),
        Some(crate::config::ListenerAuth::htpasswd(
            "/etc/icecast2/members.htpasswd",
            true
        ))
    );
    // icecast's default: allow_duplicate_users = 0.
    assert_eq!(
        auth("/plain.mp3"),
        Some(crate::config::ListenerAuth::htpasswd("users", false))
    );
    assert_eq!(
        config.mount("/members.mp3").map(|m| m.http_headers.len()),
        Some(1)
    );
    let mut url = crate::config::UrlAuth::new("http://auth.example/add.php");
    url.listener_remove = Some("http://auth.example/remove.php".into());
    url.username = Some("u".into());
    url.password = Some("p".into());
    url.headers = vec!["x-forwarded-for".into(), "referer".into()];
    assert_eq!(
        auth("/url.mp3"),
        Some(crate::config::ListenerAuth {
            backend: crate::config::AuthBackend::Url(url),
            allow_duplicate_users: false,
        })
    );
    // An https:// backend maps (TLS verified against the system's roots); ftp:// does not.
    assert_eq!(
        auth("/tls.mp3"),
        Some(crate::config::ListenerAuth {
            backend: crate::config::AuthBackend::Url(crate::config::UrlAuth::new("https://a/b")),
            allow_duplicate_users: false,
        })
    );
    assert_eq!(auth("/ftp.mp3"), None);
    assert_eq!(auth("/nofile.mp3"), None);
    assert_eq!(auth("/ldap.mp3"), None);
    let warned = |needle: &str| warned(&c, needle);
    assert!(warned("name=\"mount_add\""), "{:?}", c.warnings);
    assert!(warned("only http:// and https://"), "{:?}", c.warnings);
    assert!(warned("THE MOUNT IS OPEN"), "{:?}", c.warnings);
    assert!(warned("without a filename"), "{:?}", c.warnings);
    assert!(warned("unknown type \"ldap\""), "{:?}", c.warnings);
    assert!(warned("name=\"bogus\""), "{:?}", c.warnings);
}

#[test]
fn default_mount_fills_the_gaps_of_specific_mounts() {
    let xml = r#"<icecast>
  <mount type="default">
<password>defaultpw</password><max-listeners>3</max-listeners>
<stream-name>Default name</stream-name><hidden>1</hidden>
<authentication type="htpasswd"><option name="filename" value="users"/></authentication>
<http-headers><header name="X-Default" value="1"/></http-headers>
  </mount>
  <mount type="normal">
<mount-name>/special.mp3</mount-name><password>specialpw</password>
<max-listeners>1</max-listeners><stream-name>Special</stream-name><hidden>0</hidden>
<http-headers><header name="X-Own" value="1"/></http-headers>
  </mount>
  <mount type="normal"><mount-name>/named.mp3</mount-name><stream-name>Named</stream-name></mount>
  <mount type="normal"><mount-name>/live/*</mount-name><genre>Live</genre></mount>
  <mount type="normal"><mount-name>/live/studio</mount-name><genre>Studio</genre></mount>
  <mount type="default"><max-listeners>99</max-listeners></mount>
  <mount type="odd"><mount-name>/odd</mount-name></mount>
  <mount><password>nameless</password></mount>
</icecast>"#;
    let c = convert(xml);
    let config = c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    let special = config.mount("/special.mp3").expect("special");
    assert_eq!(special.password.as_deref(), Some("specialpw"));
    assert_eq!(special.max_listeners, Some(1));
    assert_eq!(special.stream_name.as_deref(), Some("Special"));
    // icecast2 reads <hidden>0 as "not set", so the default's 1 fills it in.
    assert_eq!(special.hidden, Some(true));
    // The mount's own headers, then the default's (icecast2 appends them).
    let names: Vec<&str> = special
        .http_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["X-Own", "X-Default"]);
    let named = config.mount("/named.mp3").expect("named");
    assert_eq!(
        (
            named.max_listeners,
            named.stream_name.as_deref(),
            named.password.as_deref()
        ),
        (Some(3), Some("Named"), Some("defaultpw"))
    );
    let other = config.mount("/other.mp3").expect("default");
    assert_eq!(
        (other.max_listeners, other.stream_name.as_deref()),
        (Some(3), Some("Default name"))
    );
    assert_eq!(
        config
            .mount("/live/studio")
            .and_then(|m| m.genre.clone())
            .as_deref(),
        Some("Studio")
    );
    assert!(config.mount("/odd").is_some_and(|m| m.name.is_empty()));
    assert_eq!(config.mounts.len(), 4);
    // Where floecast deliberately differs from icecast2, it says so.
    for needle in [
        "does not apply the default mount's <authentication>",
        "icecast2 never applies this mount to \"/live/studio\"",
        "only the first default mount",
        "unknown type \"odd\"",
        "<mount> ignored: no <mount-name>",
    ] {
        assert!(warned(&c, needle), "{needle}: {:#?}", c.warnings);
    }
}

#[test]
fn repeated_options_keep_the_last_and_never_break_the_toml() {
    let xml = r#"<icecast>
  <hostname>first</hostname><hostname>second</hostname>
  <limits><clients>10</clients></limits><limits><clients>20</clients><sources>3</sources></limits>
  <authentication><admin-password>a1</admin-password></authentication>
  <source-password>legacy</source-password>
  <paths><webroot>/w1</webroot></paths><paths><pidfile>/run/x.pid</pidfile></paths>
  <mount type="normal"><mount-name>/m</mount-name>
<stream-name>one</stream-name><stream-name>two</stream-name>
<authentication type="htpasswd"><option name="filename" value="first"/></authentication>
<authentication type="htpasswd"><option name="filename" value="second"/></authentication>
  </mount>
  <mount type="normal"><mount-name>/n</mount-name>
<authentication type="htpasswd"><option name="filename" value="good"/></authentication>
<authentication type="ldap"/>
  </mount>
</icecast>"#;
    let c = convert(xml);
    toml::from_str::<toml::Table>(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    let config = c.load().unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    assert_eq!(config.hostname, "second");
    assert_eq!((config.limits.clients, config.limits.sources), (20, 3));
    assert_eq!(config.auth.source_password, "legacy");
    assert_eq!(config.auth.admin_password, "a1");
    assert_eq!(config.paths.webroot.as_deref(), Some(Path::new("/w1")));
    assert_eq!(
        config.paths.pidfile.as_deref(),
        Some(Path::new("/run/x.pid"))
    );
    let m = config.mount("/m").expect("/m");
    assert_eq!(m.stream_name.as_deref(), Some("two"));
    // icecast2 keeps the last <authentication> of a mount ...
    assert_eq!(
        m.authentication,
        Some(crate::config::ListenerAuth::htpasswd("second", false))
    );
    // ... even when it is unusable: then the mount is open there, and here.
    assert_eq!(
        config.mount("/n").and_then(|m| m.authentication.clone()),
        None
    );
    for needle in [
        "<hostname> repeated (first at line 2)",
        "<mount.stream-name> repeated (first at line 8)",
        "icecast2 uses the last <authentication> (line 10)",
        "icecast2 uses the last <authentication> (line 14)",
        "THE MOUNT IS OPEN",
    ] {
        assert!(warned(&c, needle), "{needle}: {:#?}", c.warnings);
    }
}

#[test]
fn load_errors_point_at_the_xml() {
    let xml = "<icecast>\n<mount>\n<mount-name>/a</mount-name>\n<queue-size>1000</queue-size>\n</mount>\n</icecast>";
    let e = convert(xml)
        .load()
        .expect_err("queue smaller than the burst");
    assert_eq!(e.origin(), "icecast.xml");
    assert_eq!(e.line(), Some(4));
    assert!(
        e.key().is_some_and(|k| k.starts_with("mount.queue-size")),
        "{e}"
    );
    let e = convert("<icecast>\n<limits>\n<clients>-5</clients>\n</limits>\n</icecast>")
        .load()
        .expect_err("negative clients");
    assert_eq!((e.origin(), e.line()), ("icecast.xml", Some(3)), "{e}");
    let e = convert("<icecast>\n<mount>\n<mount-name>live</mount-name>\n</mount>\n</icecast>")
        .load()
        .expect_err("a mount name needs a slash");
    assert_eq!((e.origin(), e.line()), ("icecast.xml", Some(3)), "{e}");
}

#[test]
fn tls_sockets_take_tls_with_icecasts_certificate() {
    let c = convert(
        "<icecast><listen-socket><port>8000</port></listen-socket>\
         <listen-socket><port>8443</port><ssl>1</ssl></listen-socket>\
         <paths><ssl-certificate>/etc/icecast2/bundle.pem</ssl-certificate>\
         <ssl-allowed-ciphers>HIGH</ssl-allowed-ciphers></paths></icecast>",
    );
    let config = c.load().expect("loads");
    assert_eq!(
        config
            .listen
            .iter()
            .map(|l| (l.port, l.tls))
            .collect::<Vec<_>>(),
        [(8000, TlsMode::Auto), (8443, TlsMode::Required)]
    );
    // icecast2's combined PEM: the key is in the certificate file.
    assert_eq!(
        config.tls,
        vec![CertificateFiles {
            certificate: "/etc/icecast2/bundle.pem".into(),
            private_key: None,
        }]
    );
    assert!(
        c.warnings.iter().all(|w| w.severity != Severity::Danger),
        "{:?}",
        c.warnings
    );
    assert!(warned(&c, "<paths.ssl-allowed-ciphers"));
    // A TLS socket without a certificate cannot serve: an error at its <ssl>.
    let e = to_toml(
        "<icecast>\n<listen-socket><port>8443</port>\n<ssl>1</ssl></listen-socket></icecast>",
        "icecast.xml",
    )
    .expect_err("no certificate");
    assert_eq!((e.line(), e.key()), (Some(3), Some("listen-socket.ssl")));
}

/// Any arrangement of icecast's own elements converts to TOML that parses, and loading
/// it either works or reports an error in the XML file.
fn arbitrary_icecast_xml() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just("hostname"),
        Just("port"),
        Just("source-password"),
        Just("mount-name"),
        Just("password"),
        Just("max-listeners"),
        Just("burst-size"),
        Just("queue-size"),
        Just("hidden"),
        Just("public"),
        Just("no-yp"),
        Just("stream-name"),
        Just("intro"),
        Just("ssl"),
        Just("shoutcast-compat"),
        Just("shoutcast-mount"),
        Just("clients"),
        Just("burst-on-connect"),
        Just("accesslog"),
        Just("logdir"),
        Just("server"),
        Just("bogus"),
    ];
    let value = prop_oneof![
        Just(""),
        Just("0"),
        Just("1"),
        Just("-1"),
        Just("8000"),
        Just("/a"),
        Just("/a/*"),
        Just("x\"y'z\\"),
    ];
    let child = (leaf, value).prop_map(|(n, v)| format!("<{n}>{v}</{n}>"));
    let auth = prop_oneof![
        Just(r#"<authentication type="htpasswd"><option name="filename" value="f"/></authentication>"#.to_string()),
        Just(r#"<authentication type="url"/>"#.to_string()),
        Just(r#"<http-headers><header name="X" value="1"/><bogus/></http-headers>"#.to_string()),
    ];
    let children = proptest::collection::vec(prop_oneof![child.clone(), auth], 0..6);
    let section = (
        prop_oneof![
            Just("mount"),
            Just("mount type=\"default\""),
            Just("listen-socket"),
            Just("limits"),
            Just("paths"),
            Just("logging"),
            Just("relay"),
            Just("authentication"),
        ],
        children,
    )
        .prop_map(|(tag, body)| {
            let end = tag.split(' ').next().unwrap_or(tag);
            format!("<{tag}>{}</{end}>", body.concat())
        });
    proptest::collection::vec(prop_oneof![section, child], 0..8)
        .prop_map(|parts| format!("<icecast>{}</icecast>", parts.concat()))
}

proptest::proptest! {
    #[test]
    fn converted_toml_always_parses(xml in arbitrary_icecast_xml()) {
        if let Ok(c) = to_toml(&xml, "icecast.xml") {
            let parsed = toml::from_str::<toml::Table>(&c.toml);
            proptest::prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err(), c.toml);
            if let Err(e) = c.load() {
                proptest::prop_assert_eq!(e.origin(), "icecast.xml", "{}\n{}", e, c.toml);
            }
        }
    }
}
