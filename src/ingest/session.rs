//! A live source session: creates and registers the mount, pumps bytes from the source
//! through the framer into the mount queue under the source timeout, and on the way out
//! moves listeners to the fallback, runs on-disconnect and frees the mount name.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::format::{self, Block, Family, Framer, icy::IcyDemuxer};
use crate::http::Dechunker;
use crate::mount::{Mount, MountSettings, SourceInfo, SourceRejected, display_line};
use crate::server::Server;

/// Largest intro file we load into memory.
const MAX_INTRO: u64 = 16 * 1024 * 1024;
/// Read size for source sockets.
const READ_CHUNK: usize = 16 * 1024;
/// While a silent source's listeners are on the fallback (`fallback-after-silence`), how
/// often listeners that joined the silent mount since are sent after them.
const SILENCE_RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartError {
    #[error(transparent)]
    Rejected(#[from] SourceRejected),
}

/// Why a source session ended, for the log.
#[derive(Debug)]
pub enum EndReason {
    Eof,
    Timeout,
    Shutdown,
    /// Ended by the admin `killsource` command.
    Killed,
    /// Ended by whoever runs the session (a relay going idle or removed).
    Stopped(&'static str),
    Error(String),
}

/// How a source other than a pushed one (a relay) takes its mount.
#[derive(Debug, Default)]
pub struct StartOptions<'a> {
    /// Replace this standby mount (an on-demand reservation) instead of requiring a free name.
    pub replacing: Option<&'a Arc<Mount>>,
    /// Count as a relay (in `source_relay_connections`); relays are held to `<sources>` too.
    pub relay: bool,
}

pub struct SourceSession {
    pub server: Arc<Server>,
    pub mount: Arc<Mount>,
    pub config: Arc<Config>,
    framer: Box<dyn Framer>,
    dechunk: Option<Dechunker>,
    icy: Option<IcyDemuxer>,
    /// Ogg chains whose tags have been applied to the mount's title.
    chains_seen: u64,
    /// The mount's metadata version as of the session's own last title change or its last
    /// look: any other value means an admin update came in since.
    meta_version_seen: u64,
    started: Instant,
}

impl SourceSession {
    /// Create and register the mount for an accepted source. Fails as icecast does when the
    /// mount is in use or `<sources>` is reached.
    pub async fn start(
        server: &Arc<Server>,
        mount_name: &str,
        headers: &[(String, String)],
        content_type: &str,
        peer: &SocketAddr,
        chunked: bool,
    ) -> Result<SourceSession, StartError> {
        Self::start_with(
            server,
            mount_name,
            headers,
            content_type,
            peer,
            chunked,
            StartOptions::default(),
        )
        .await
    }

    /// [`SourceSession::start`] for sources that are not pushed (relays).
    pub async fn start_with(
        server: &Arc<Server>,
        mount_name: &str,
        headers: &[(String, String)],
        content_type: &str,
        peer: &SocketAddr,
        chunked: bool,
        opts: StartOptions<'_>,
    ) -> Result<SourceSession, StartError> {
        let config = server.config();
        if opts.replacing.is_none() && server.registry.contains(mount_name) {
            return Err(SourceRejected::InUse.into());
        }
        let mount_cfg = config.mount(mount_name);
        let mut info = SourceInfo::from_headers(headers, content_type, mount_cfg.as_deref());
        info.stream.source_ip = crate::net::peer_ip(peer);
        let settings = MountSettings::resolve(&config, mount_name);
        // The intro is a path under the webroot, as in icecast ("/intro.mp3" included).
        let intro = match mount_cfg.as_deref().and_then(|m| m.intro.as_deref()) {
            Some(p) => load_intro(&config.intro_path(p)).await,
            None => None,
        };
        let family = Family::from_content_type(&info.stream.content_type);
        let framer = format::framer_for(family, &info.stream.content_type);
        let icy = info.source_metaint.map(IcyDemuxer::new);
        let mount = Arc::new(Mount::new(mount_name, info, settings, intro));
        // Relays count against <sources> like pushed sources, as in icecast2.
        match opts.replacing {
            Some(standby) => {
                server
                    .registry
                    .replace(standby, mount.clone(), config.limits.sources)?;
                // Listeners waiting on the reservation wake, look again and find this mount.
                standby.end(None);
            }
            None => server
                .registry
                .insert(mount.clone(), config.limits.sources)?,
        }
        server
            .stats
            .source_total_connections
            .fetch_add(1, Ordering::Relaxed);
        let kind = if opts.relay {
            &server.stats.source_relay_connections
        } else {
            &server.stats.source_client_connections
        };
        kind.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            mount = mount_name,
            content_type,
            family = family.name(),
            "source connected"
        );

        if let Some(cmd) = mount_cfg.as_deref().and_then(|m| m.on_connect.as_deref()) {
            run_hook(cmd, mount_name);
        }
        take_listeners_back(server, &mount);
        Ok(SourceSession {
            server: server.clone(),
            mount,
            config,
            framer,
            dechunk: chunked.then(Dechunker::new),
            icy,
            chains_seen: 0,
            meta_version_seen: 0,
            started: Instant::now(),
        })
    }

    /// Pump the source until it ends, then tear the mount down. `initial` holds body bytes
    /// that arrived together with the request head. Returns bytes read and the reason.
    pub async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: &mut R,
        initial: Bytes,
    ) -> (u64, Duration, EndReason) {
        let (total, reason) = self
            .pump(reader, initial, std::future::pending::<EndReason>())
            .await;
        self.finish(&reason, None);
        (total, self.started.elapsed(), reason)
    }

    /// Feed the mount from `reader` until it ends, the mount's source is killed, the server
    /// shuts down or `until` completes, without ending the session: a relay can then feed the
    /// same mount from a new upstream connection, so its listeners stay.
    pub async fn pump<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        initial: Bytes,
        until: impl std::future::Future<Output = EndReason>,
    ) -> (u64, EndReason) {
        tokio::pin!(until);
        let timeout = self.mount.settings.source_timeout;
        // fallback-after-silence: listeners go to the fallback while the source, still
        // connected, sends nothing; `silent` says they were sent.
        let silence = (self.mount.settings.fallback_after_silence).filter(|s| *s < timeout);
        let mut last_data = tokio::time::Instant::now();
        let mut silent = false;
        let mut dump = open_dump(&self.config, &self.mount.name).await;
        let mut total = 0u64;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut reason = match self.feed(&initial, &mut dump).await {
            Ok(()) => None,
            Err(e) => Some(EndReason::Error(e)),
        };
        total += initial.len() as u64;
        while reason.is_none() {
            // A chunked body's last chunk ends the stream, as closing would (curl `-T -`
            // then waits for the close, and the mount would linger until the timeout).
            if self.dechunk.as_ref().is_some_and(Dechunker::is_done) {
                reason = Some(EndReason::Eof);
                break;
            }
            buf.clear();
            buf.reserve(READ_CHUNK);
            let shutdown = self.server.shutdown_notified();
            if self.server.is_shutting_down() {
                reason = Some(EndReason::Shutdown);
                break;
            }
            let deadline = match silence {
                Some(_) if silent => {
                    (tokio::time::Instant::now() + SILENCE_RECHECK).min(last_data + timeout)
                }
                Some(s) => last_data + s,
                None => last_data + timeout,
            };
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)) => r,
                _ = shutdown => { reason = Some(EndReason::Shutdown); break; }
                _ = self.mount.killed() => { reason = Some(EndReason::Killed); break; }
                r = &mut until => { reason = Some(r); break; }
            };
            match read {
                Err(_) if last_data.elapsed() < timeout => {
                    if let Some(s) = silence {
                        self.silence_fallback(s, !silent);
                        silent = true;
                    }
                }
                Err(_) => reason = Some(EndReason::Timeout),
                Ok(Err(e)) => reason = Some(EndReason::Error(e.to_string())),
                Ok(Ok(0)) => reason = Some(EndReason::Eof),
                Ok(Ok(n)) => {
                    last_data = tokio::time::Instant::now();
                    if std::mem::take(&mut silent) {
                        tracing::info!(mount = %self.mount.name, "silent source speaks again");
                        take_listeners_back(&self.server, &self.mount);
                    }
                    total += n as u64;
                    let data = buf.split().freeze();
                    if let Err(e) = self.feed(&data, &mut dump).await {
                        reason = Some(EndReason::Error(e));
                    }
                    // A read that filled the buffer means the source sends faster than real
                    // time. Such a task is always runnable, and tokio polls sockets only
                    // every few dozen task polls, so it would fill the whole queue before any
                    // listener's socket is serviced. Waiting for the next timer tick lets the
                    // I/O driver run: one read per event-loop round, as icecast2's loop does.
                    // Live sources send less than a buffer at a time and never wait here.
                    if n >= READ_CHUNK {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        (total, reason.unwrap_or(EndReason::Eof))
    }

    /// A new upstream connection feeds this session's mount (a relay reconnected): in-band
    /// metadata and chunking follow the new connection, the stream facts its headers.
    /// Ogg and WebM framers stay (their header ids tell listeners a new chain came); a
    /// frame-based stream gets a fresh framer that drops what precedes its first frame, so
    /// neither a frame cut off by the lost connection nor the new upstream's ID3 tag reaches
    /// listeners mid-stream.
    pub fn reset_upstream(
        &mut self,
        headers: &[(String, String)],
        content_type: &str,
        chunked: bool,
    ) {
        if let Some(f) = format::continuing_framer(self.mount.family, content_type) {
            self.framer = f;
        }
        let mut info = SourceInfo::from_headers(
            headers,
            content_type,
            self.config.mount(&self.mount.name).as_deref(),
        );
        info.stream.source_ip = self.mount.with_info(|i| i.stream.source_ip.clone());
        self.icy = info.source_metaint.map(IcyDemuxer::new);
        self.dechunk = chunked.then(Dechunker::new);
        self.mount.replace_info(info);
    }

    /// De-chunk, strip in-band ICY metadata, frame, and queue one read's worth of bytes.
    async fn feed(
        &mut self,
        data: &[u8],
        dump: &mut Option<tokio::fs::File>,
    ) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        // Owned only when a transformation applies; plain sources are framed straight from `data`.
        let mut owned: Option<Bytes> = None;
        if let Some(d) = self.dechunk.as_mut() {
            let mut out = Vec::with_capacity(data.len());
            d.push(data, &mut out).map_err(|e| e.to_string())?;
            owned = Some(Bytes::from(out));
        }
        if let Some(icy) = self.icy.as_mut() {
            let input = owned.as_deref().unwrap_or(data);
            let mut audio = bytes::BytesMut::with_capacity(input.len());
            let mut metas = Vec::new();
            icy.push(input, &mut audio, &mut metas);
            for m in metas {
                let Some(title) = m.title else { continue };
                // An upstream repeats its block to each new client; only a change counts.
                let now = self.mount.metadata();
                if now.display() != title || now.url != m.url {
                    self.meta_version_seen = self.mount.set_metadata(Some(title), None, m.url);
                    self.count_inband_title();
                }
            }
            owned = Some(audio.freeze());
        }
        let data = owned.as_deref().unwrap_or(data);
        if let Some(f) = dump.as_mut() {
            if let Err(e) = f.write_all(data).await {
                tracing::warn!(mount = %self.mount.name, "dump file write failed, closing it: {e}");
                *dump = None;
            }
        }
        self.frame(data)
    }

    /// Frame stream bytes that need no de-chunking or ICY stripping straight into the mount
    /// (a P2PSP team's reassembled stream arrives this way).
    pub fn ingest(&mut self, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        self.frame(data)
    }

    /// The next bytes do not follow the last ones (a P2PSP peer's skipped chunk, or its first
    /// chunk after the header): the framer resynchronises.
    pub fn discontinuity(&mut self) {
        self.framer.discontinuity();
    }

    fn frame(&mut self, data: &[u8]) -> Result<(), String> {
        let mut blocks = Vec::new();
        self.follow_admin_title(&mut blocks);
        self.framer
            .push(data, &mut blocks)
            .map_err(|e| e.to_string())?;
        self.mount.push_blocks(blocks);
        self.mount
            .set_header_len(self.framer.header().map_or(0, |h| h.data.len()));
        let info = self.framer.info();
        self.mount.set_codec(info);
        // Each new Ogg chain's comment header sets the title and artist, as in icecast2
        // (a chain without tags clears them); an admin update holds until the next chain.
        if info.chains != self.chains_seen {
            self.chains_seen = info.chains;
            let meta = self.mount.metadata();
            if meta.title != info.title || meta.artist != info.artist {
                let (title, artist) = (info.title.clone(), info.artist.clone());
                self.meta_version_seen = self.mount.set_metadata(title, artist, None);
                self.count_inband_title();
            }
        }
        Ok(())
    }

    /// An admin title update (any change the session did not make itself) goes into the
    /// stream where the format carries titles there, as icecast2 does for Ogg Vorbis: the
    /// framer starts a new chain whose comment header has the new title, so players that
    /// show in-stream tags follow it. Looked at before each push, so the pages of that push
    /// already belong to the new chain.
    fn follow_admin_title(&mut self, blocks: &mut Vec<Block>) {
        let version = self.mount.meta_version();
        if version == self.meta_version_seen {
            return;
        }
        self.meta_version_seen = version;
        let meta = self.mount.metadata();
        let info = self.framer.info();
        // Nothing to rewrite when the stream already says it (a P2PSP peer taking on its
        // splitter's title, which came in-stream).
        if meta.display() == display_line(info.title.as_deref(), info.artist.as_deref()) {
            return;
        }
        if self
            .framer
            .retitle(meta.title.as_deref(), meta.artist.as_deref(), blocks)
        {
            tracing::info!(mount = %self.mount.name, title = %meta.display(), "title written into the stream as a new Ogg chain");
        }
    }

    fn count_inband_title(&self) {
        let label = self.server.metrics.mount_label(&self.mount.name);
        self.server
            .metrics
            .metadata_updates
            .with_label_values(&[&label, "inband"])
            .inc();
    }

    /// End the session from outside the read loop (a team's splitter went away).
    pub fn end(mut self, reason: EndReason) {
        self.finish(&reason, None);
    }

    /// End the session and put `standby` in the mount's place (an on-demand relay going idle
    /// keeps its name reserved).
    pub fn end_into(mut self, reason: EndReason, standby: Arc<Mount>) {
        self.finish(&reason, Some(standby));
    }

    fn finish(&mut self, reason: &EndReason, standby: Option<Arc<Mount>>) {
        let mut rest = Vec::new();
        self.framer.flush(&mut rest);
        self.mount.push_blocks(rest);
        match standby {
            Some(s) => {
                if self
                    .server
                    .registry
                    .replace(&self.mount, s, usize::MAX)
                    .is_err()
                {
                    tracing::warn!(mount = %self.mount.name, "mount taken over; on-demand reservation dropped");
                }
            }
            None => self.server.registry.remove(&self.mount),
        }
        let config = self.server.config();
        let fallback = self.fallback_mount(&config);
        if let Some(f) = &fallback {
            self.count_fallback(f);
        }
        match &fallback {
            Some(f) => {
                tracing::info!(mount = %self.mount.name, fallback = %f.name, ?reason, "source ended; moving listeners")
            }
            None => tracing::info!(mount = %self.mount.name, ?reason, "source ended"),
        }
        self.mount.end(fallback);
        if let Some(cmd) = config
            .mount(&self.mount.name)
            .and_then(|m| m.on_disconnect.clone())
        {
            run_hook(&cmd, &self.mount.name);
        }
    }
}

impl SourceSession {
    /// The first live mount of this mount's fallback chain, of its family.
    fn fallback_mount(&self, config: &Config) -> Option<Arc<Mount>> {
        self.server
            .registry
            .resolve_fallback(
                self.mount.fallback(),
                |name| fallback_of(&self.server, config, name),
                Some(self.mount.family),
            )
            .filter(|f| !Arc::ptr_eq(f, &self.mount))
    }

    fn count_fallback(&self, to: &Mount) {
        let from = self.server.metrics.mount_label(&self.mount.name);
        let to = self.server.metrics.mount_label(&to.name);
        self.server
            .metrics
            .fallback_activations
            .with_label_values(&[&from, &to])
            .inc();
    }

    /// The source has sent nothing for `fallback-after-silence` (`first`), or is still
    /// silent: its listeners, and any that joined since, continue on the fallback while it
    /// stays connected.
    fn silence_fallback(&self, after: Duration, first: bool) {
        if !first && self.mount.listener_count() == 0 {
            return;
        }
        let config = self.server.config();
        let Some(fallback) = self.fallback_mount(&config) else {
            return;
        };
        if first {
            self.count_fallback(&fallback);
            tracing::info!(mount = %self.mount.name, fallback = %fallback.name, "source silent for {} s; moving listeners", after.as_secs());
        }
        self.mount.move_listeners_to(fallback);
    }
}

/// fallback-override: a source that returns (or speaks again after a silence) takes back the
/// listeners of its fallback mount.
fn take_listeners_back(server: &Server, mount: &Arc<Mount>) {
    if !mount.settings.fallback_override {
        return;
    }
    if let Some(fb) = mount
        .fallback()
        .as_deref()
        .and_then(|f| server.registry.get(f))
    {
        if fb.family == mount.family && !Arc::ptr_eq(&fb, mount) {
            tracing::info!(from = %fb.name, to = %mount.name, "fallback override: taking listeners back");
            fb.move_listeners_to(mount.clone());
        }
    }
}

/// The next hop of a fallback chain: a live mount's own (admin-changeable) fallback, else
/// the configured one.
fn fallback_of(server: &Server, config: &Config, name: &str) -> Option<String> {
    match server.registry.get(name) {
        Some(m) => m.fallback(),
        None => config.mount(name).and_then(|m| m.fallback_mount.clone()),
    }
}

async fn load_intro(path: &Path) -> Option<Bytes> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.len() > MAX_INTRO => {
            tracing::warn!(
                "intro {} is larger than {MAX_INTRO} bytes; ignored",
                path.display()
            );
            None
        }
        Ok(_) => match tokio::fs::read(path).await {
            Ok(b) => Some(Bytes::from(b)),
            Err(e) => {
                tracing::warn!("cannot read intro {}: {e}", path.display());
                None
            }
        },
        Err(e) => {
            tracing::warn!("cannot read intro {}: {e}", path.display());
            None
        }
    }
}

/// Open the mount's dump file (strftime patterns expanded, appended to).
async fn open_dump(config: &Config, mount: &str) -> Option<tokio::fs::File> {
    let pattern = config.mount(mount)?.dump_file.clone()?;
    let path = expand_strftime(&pattern.to_string_lossy());
    match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
    {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(mount, "cannot open dump file {path}: {e}");
            None
        }
    }
}

/// Expand strftime patterns like icecast does for `<dump-file>`; an invalid pattern is used
/// literally rather than failing the source.
fn expand_strftime(pattern: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let items: Vec<_> = chrono::format::StrftimeItems::new(pattern).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return pattern.to_string();
    }
    let now = chrono::Local::now();
    if write!(out, "{}", now.format_with_items(items.into_iter())).is_err() {
        return pattern.to_string();
    }
    out
}

/// Run an on-connect/on-disconnect script with the mount as argv[1], detached, stdio closed.
fn run_hook(cmd: &Path, mount: &str) {
    let mut c = tokio::process::Command::new(cmd);
    c.arg(mount)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match c.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!(mount, "cannot run {}: {e}", cmd.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_expansion() {
        let s = expand_strftime("/tmp/dump-%Y.mp3");
        assert!(s.starts_with("/tmp/dump-2") && s.ends_with(".mp3"));
        assert_eq!(expand_strftime("/tmp/plain.mp3"), "/tmp/plain.mp3");
    }
}
