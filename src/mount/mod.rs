//! Mounts: one live channel each, fed by one source and read by any number of listeners.
//!
//! A `Mount` owns the block queue, the current metadata and the stats. It does not know
//! whether its source is a push, a relay or a P2PSP team: each of those only calls
//! `push_blocks`. Listeners never touch each other; they follow the mount's `notify` and,
//! when told to move (fallback, override, admin), its `redirect`.

pub use floecast_core::queue;
pub mod registry;
pub mod source_info;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::{Config, HttpHeader};
use crate::documents::MountCounters;
use crate::format::{Block, CodecInfo, Family, icy};
use crate::sync::{lock, read, write};
pub use queue::{Cursor, Departure, Queue, ReadOutcome, Seq};
pub use registry::{Registry, SourceRejected};
pub use source_info::SourceInfo;

/// Per-mount settings resolved from the global config and the matching `[[mount]]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MountSettings {
    pub burst_size: usize,
    pub queue_size: usize,
    pub source_timeout: Duration,
    /// ICY metadata interval for listeners that ask; 0 = never.
    pub metaint: usize,
    /// Ogg mounts interleave ICY metadata too (`icy-metadata-in-ogg`).
    pub icy_in_ogg: bool,
    pub max_listeners: Option<usize>,
    pub fallback_mount: Option<String>,
    pub fallback_override: bool,
    /// Silence after which listeners move to the fallback while the source stays.
    pub fallback_after_silence: Option<Duration>,
    pub fallback_when_full: bool,
    pub hidden: bool,
    pub charset: Option<String>,
    pub http_headers: Vec<HttpHeader>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Pausing listeners are woken every this many pushed bytes (4 s of a 128 kbit/s stream).
pub const SURGE_BYTES: u64 = 64 * 1024;

/// icecast's default ICY metadata interval.
pub const DEFAULT_METAINT: usize = 16_000;

impl MountSettings {
    pub fn resolve(config: &Config, mount: &str) -> Self {
        let m = config.mount(mount).unwrap_or_default();
        let queue_size = m.queue_size.unwrap_or(config.limits.queue_size);
        MountSettings {
            // Sections merged from several places may pair a burst with a smaller queue; a
            // burst never holds more than the queue.
            burst_size: m
                .burst_size
                .unwrap_or(config.limits.burst_size)
                .min(queue_size),
            queue_size,
            source_timeout: m.source_timeout.unwrap_or(config.limits.source_timeout),
            metaint: m.mp3_metadata_interval.unwrap_or(DEFAULT_METAINT),
            icy_in_ogg: m.icy_metadata_in_ogg.unwrap_or(false),
            max_listeners: m.max_listeners,
            fallback_mount: m.fallback_mount.clone(),
            fallback_override: m.fallback_override.unwrap_or(false),
            fallback_after_silence: m.fallback_after_silence,
            fallback_when_full: m.fallback_when_full.unwrap_or(false),
            hidden: m.hidden.unwrap_or(false),
            charset: m.charset.clone(),
            http_headers: m.http_headers.clone(),
            username: m.username.clone(),
            password: m.password.clone(),
        }
    }
}

/// The current title, and the ICY block that carries it, shared by every listener.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub url: Option<String>,
    /// Length byte plus padded `StreamTitle='…';` text.
    pub icy_block: Bytes,
}

/// The line players show for a title and artist: `artist - title` or the one there is.
pub fn display_line(title: Option<&str>, artist: Option<&str>) -> String {
    match (artist, title) {
        (Some(a), Some(t)) if !a.is_empty() => format!("{a} - {t}"),
        (_, Some(t)) => t.to_string(),
        (Some(a), None) => a.to_string(),
        (None, None) => String::new(),
    }
}

impl Metadata {
    fn new(title: Option<String>, artist: Option<String>, url: Option<String>) -> Self {
        let text = display_line(title.as_deref(), artist.as_deref());
        let icy_block = icy::metadata_block(&text, url.as_deref());
        Metadata {
            title,
            artist,
            url,
            icy_block,
        }
    }

    /// The line players show: `artist - title` or the title alone.
    pub fn display(&self) -> String {
        display_line(self.title.as_deref(), self.artist.as_deref())
    }
}

#[derive(Debug, Default)]
pub struct MountStats {
    pub listeners: AtomicUsize,
    pub listener_peak: AtomicUsize,
    pub slow_listeners: AtomicU64,
    pub listener_connections: AtomicU64,
    pub total_bytes_read: AtomicU64,
    pub total_bytes_sent: AtomicU64,
    pub metadata_updates: AtomicU64,
}

impl MountStats {
    /// The counters status documents show.
    pub fn snapshot(&self) -> MountCounters {
        MountCounters {
            listener_peak: self.listener_peak.load(Ordering::Relaxed),
            slow_listeners: self.slow_listeners.load(Ordering::Relaxed),
            listener_connections: self.listener_connections.load(Ordering::Relaxed),
            total_bytes_read: self.total_bytes_read.load(Ordering::Relaxed),
            total_bytes_sent: self.total_bytes_sent.load(Ordering::Relaxed),
        }
    }
}

/// Asks one listener to leave (admin kill, shutdown). The flag is checked every loop;
/// the notify wakes a listener that is idle waiting for its source.
#[derive(Debug, Default)]
pub struct Kick {
    flag: AtomicBool,
    notify: Notify,
}

impl Kick {
    pub fn kick(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub fn is_kicked(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// One connected listener as admin commands see it.
#[derive(Debug, Clone)]
pub struct ListenerEntry {
    pub ip: std::net::IpAddr,
    pub user_agent: String,
    pub connected: SystemTime,
    pub kick: Arc<Kick>,
    /// The user an authenticated listener logged in as (boxed: most listeners have none).
    pub username: Option<Box<str>>,
}

/// One live channel. Its parts, each with its own lock or atomics: what the stream is
/// (`description`), the fan-out queue and the signals readers wait on (`feed`), the current
/// title (`titles`), where listeners are sent (`moves`), who is listening (`listeners`) and
/// how the source is steered (`source`).
#[derive(Debug)]
pub struct Mount {
    pub name: String,
    pub family: Family,
    pub settings: MountSettings,
    pub intro: Option<Bytes>,
    pub stats: MountStats,
    pub started: SystemTime,
    description: Description,
    feed: Feed,
    titles: Titles,
    moves: Moves,
    /// The connected listeners by client id, for admin commands (list, kick, users).
    listeners: Mutex<HashMap<u64, ListenerEntry>>,
    source: SourceControl,
}

/// What the stream is: what its source said, and what the framer found in it.
#[derive(Debug)]
struct Description {
    info: RwLock<SourceInfo>,
    codec: RwLock<CodecInfo>,
    /// Size of the framer's current stream header (0: none yet, or a format without one).
    header_len: AtomicUsize,
}

/// The fan-out: the block queue and the signals its readers wait on. A reader takes the
/// queue's one lock to read; nothing else is locked on that path.
#[derive(Debug)]
struct Feed {
    queue: Mutex<Queue>,
    /// Woken when blocks arrive, the source ends, or listeners must move.
    notify: Notify,
    ended: AtomicBool,
    /// Woken each time another SURGE_BYTES have been pushed, so listeners pausing to
    /// coalesce writes notice a stream that suddenly runs fast, and when they must move.
    surge: Notify,
    pushed_bytes: AtomicU64,
}

/// The current title, and a version readers compare to notice a new one.
#[derive(Debug)]
struct Titles {
    current: RwLock<Metadata>,
    version: AtomicU64,
}

/// Where listeners go: a move asked for now (fallback, override, `moveclients`), which
/// readers notice by its epoch, and the mount they fall back to when the source leaves.
#[derive(Debug)]
struct Moves {
    redirect: Mutex<Option<Redirect>>,
    epoch: AtomicU64,
    /// The configured `fallback-mount` until the admin `fallbacks` command changes it for
    /// this live mount.
    fallback: RwLock<Option<String>>,
}

/// A move of this mount's listeners to `target`: each takes what was queued here before
/// `until` (the tail when the move was asked), then continues on `target` at the same moment.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub target: Arc<Mount>,
    pub until: Seq,
}

/// How the source is steered from outside: the admin `killsource` switch and on-demand
/// starts.
#[derive(Debug)]
struct SourceControl {
    /// Set by the admin `killsource` command; the source session ends on it.
    killed: AtomicBool,
    kill: Notify,
    /// Its source starts when listeners come and stops when they are gone (icecast's
    /// `on_demand` stat).
    on_demand: AtomicBool,
    /// Some when this is a standby: a name reserved for an on-demand source that has not
    /// started. Listeners wait for the live mount that replaces it.
    standby: Option<Standby>,
}

/// The demand side of a standby mount: listeners waiting for it, and the signal its source
/// starts on.
#[derive(Debug, Default)]
pub struct Standby {
    waiting: AtomicUsize,
    demand: Notify,
}

/// A listener waiting on a standby mount; leaving (or giving up) drops the count.
pub struct Waiting<'a>(&'a Standby);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Mount {
    pub fn new(
        name: &str,
        info: SourceInfo,
        settings: MountSettings,
        intro: Option<Bytes>,
    ) -> Self {
        let family = Family::from_content_type(&info.stream.content_type);
        let settings_fallback = settings.fallback_mount.clone();
        Mount {
            name: name.to_string(),
            family,
            feed: Feed {
                queue: Mutex::new(Queue::new(settings.queue_size.max(1), settings.burst_size)),
                notify: Notify::new(),
                ended: AtomicBool::new(false),
                surge: Notify::new(),
                pushed_bytes: AtomicU64::new(0),
            },
            settings,
            description: Description {
                info: RwLock::new(info),
                codec: RwLock::new(CodecInfo::default()),
                header_len: AtomicUsize::new(0),
            },
            titles: Titles {
                current: RwLock::new(Metadata::new(None, None, None)),
                version: AtomicU64::new(0),
            },
            moves: Moves {
                redirect: Mutex::new(None),
                epoch: AtomicU64::new(0),
                fallback: RwLock::new(settings_fallback),
            },
            intro,
            stats: MountStats::default(),
            started: SystemTime::now(),
            listeners: Mutex::new(HashMap::new()),
            source: SourceControl {
                killed: AtomicBool::new(false),
                kill: Notify::new(),
                on_demand: AtomicBool::new(false),
                standby: None,
            },
        }
    }

    /// A standby: `name` reserved for an on-demand source. It carries no stream; listeners
    /// that find it wait (see [`Mount::wait_for_source`]) until a live mount replaces it.
    pub fn standby(name: &str, info: SourceInfo, settings: MountSettings) -> Self {
        let mut m = Mount::new(name, info, settings, None);
        m.source.standby = Some(Standby::default());
        m.source.on_demand = AtomicBool::new(true);
        m
    }

    pub fn is_standby(&self) -> bool {
        self.source.standby.is_some()
    }

    pub fn is_on_demand(&self) -> bool {
        self.source.on_demand.load(Ordering::Acquire)
    }

    pub fn set_on_demand(&self, on: bool) {
        self.source.on_demand.store(on, Ordering::Release);
    }

    /// Register a listener waiting on this standby and ask for its source. `None` when this
    /// is not a standby.
    pub fn wait_for_source(&self) -> Option<Waiting<'_>> {
        let s = self.source.standby.as_ref()?;
        s.waiting.fetch_add(1, Ordering::AcqRel);
        // notify_one keeps a permit: a source task not yet waiting still sees it.
        s.demand.notify_one();
        Some(Waiting(s))
    }

    /// Listeners waiting on this standby right now.
    pub fn waiting(&self) -> usize {
        self.source
            .standby
            .as_ref()
            .map_or(0, |s| s.waiting.load(Ordering::Acquire))
    }

    /// Completes when a listener asks for this standby's source (never for other mounts).
    pub async fn demanded(&self) {
        match &self.source.standby {
            Some(s) => s.demand.notified().await,
            None => std::future::pending().await,
        }
    }

    /// New stream facts from the same source (a relay reconnected upstream).
    pub fn replace_info(&self, info: SourceInfo) {
        *write(&self.description.info) = info;
    }

    /// The mount listeners fall back to when the source leaves (or the mount is full).
    pub fn fallback(&self) -> Option<String> {
        read(&self.moves.fallback).clone()
    }

    /// Change the fallback of this live mount (admin `fallbacks`); `None` clears it.
    pub fn set_fallback(&self, fallback: Option<String>) {
        *write(&self.moves.fallback) = fallback;
    }

    /// Ask the source feeding this mount to stop (admin `killsource`). Its session ends as
    /// if the source had hung up, so listeners move to the fallback as usual.
    pub fn kill_source(&self) {
        self.source.killed.store(true, Ordering::Release);
        // notify_one keeps a permit, so a session not yet waiting still sees it.
        self.source.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.source.killed.load(Ordering::Acquire)
    }

    /// Completes once `kill_source` has been called.
    pub async fn killed(&self) {
        if !self.is_killed() {
            self.source.kill.notified().await;
        }
    }

    pub fn info(&self) -> SourceInfo {
        read(&self.description.info).clone()
    }

    pub fn with_info<R>(&self, f: impl FnOnce(&SourceInfo) -> R) -> R {
        f(&read(&self.description.info))
    }

    pub fn codec(&self) -> CodecInfo {
        read(&self.description.codec).clone()
    }

    pub fn set_codec(&self, codec: &CodecInfo) {
        if *read(&self.description.codec) != *codec {
            *write(&self.description.codec) = codec.clone();
        }
    }

    /// Note the size of the framer's current stream header (see [`Mount::burst_header_len`]).
    pub fn set_header_len(&self, len: usize) {
        self.description.header_len.store(len, Ordering::Relaxed);
    }

    /// Size of the stream header a listener connecting now is sent ahead of its burst: that
    /// of the block its burst starts on; before any is queued (a source that has sent only
    /// its Ogg or WebM header), the framer's current one, which the first block will carry.
    pub fn burst_header_len(&self) -> usize {
        match lock(&self.feed.queue).burst_header() {
            Some(header) => header.map_or(0, |h| h.data.len()),
            None => self.description.header_len.load(Ordering::Relaxed),
        }
    }

    /// Append blocks from the source and wake listeners.
    pub fn push_blocks(&self, blocks: impl IntoIterator<Item = Block>) {
        let mut bytes = 0u64;
        let mut forced = None;
        {
            let now = Instant::now();
            let mut q = lock(&self.feed.queue);
            for b in blocks {
                bytes += b.data.len() as u64;
                forced = q.push(b, now).or(forced);
            }
        }
        match forced {
            Some(1) => tracing::info!(
                mount = %self.name,
                "no keyframe for {} s: new listeners start on a page or Cluster boundary until one comes",
                queue::MAX_START_GAP.as_secs()
            ),
            Some(run) => {
                tracing::debug!(mount = %self.name, run, "forced start point, still no keyframe")
            }
            None => {}
        }
        if bytes > 0 {
            self.stats
                .total_bytes_read
                .fetch_add(bytes, Ordering::Relaxed);
            let before = self.feed.pushed_bytes.fetch_add(bytes, Ordering::Relaxed);
            if before / SURGE_BYTES != (before + bytes) / SURGE_BYTES {
                self.feed.surge.notify_waiters();
            }
            self.feed.notify.notify_waiters();
        }
    }

    /// Completes when the next SURGE_BYTES have been pushed, or listeners must move.
    pub fn surged(&self) -> tokio::sync::futures::Notified<'_> {
        self.feed.surge.notified()
    }

    /// A reader that starts with a burst of what is queued (icecast's burst-on-connect).
    pub fn burst_cursor(&self) -> Cursor {
        Cursor::burst(&lock(&self.feed.queue))
    }

    /// A reader that starts at the next start point to arrive, with no burst (a team
    /// splitter sends live chunks only).
    pub fn join_cursor(&self) -> Cursor {
        Cursor::join(&lock(&self.feed.queue))
    }

    /// Leave this mount: take what was queued before `until` with `cursor`, and say where it
    /// left (see [`Cursor::depart`]).
    pub fn depart(&self, cursor: &mut Cursor, until: Seq, out: &mut Vec<Block>) -> Departure {
        cursor.depart(&lock(&self.feed.queue), until, out)
    }

    /// Continue `cursor` here at the moment it left another mount (see [`Cursor::splice`]).
    pub fn splice(&self, cursor: &mut Cursor, left: &Departure) {
        cursor.splice(&lock(&self.feed.queue), left);
    }

    /// Start `cursor` over here after it fell a queue behind.
    pub fn rejoin(&self, cursor: &mut Cursor) {
        cursor.rejoin(&lock(&self.feed.queue));
    }

    /// Read the next blocks (about `max_bytes`, at least one) with `cursor`.
    pub fn read(&self, cursor: &mut Cursor, max_bytes: usize, out: &mut Vec<Block>) -> ReadOutcome {
        let (outcome, forced) = cursor.read(&lock(&self.feed.queue), max_bytes, out);
        if forced {
            tracing::debug!(
                mount = %self.name,
                "reader starts without a keyframe: none came for {} s",
                queue::MAX_START_GAP.as_secs()
            );
        }
        outcome
    }

    /// Sequence number the next block will get.
    pub fn tail(&self) -> Seq {
        lock(&self.feed.queue).tail()
    }

    pub fn is_lagged(&self, seq: Seq) -> bool {
        !lock(&self.feed.queue).holds(seq)
    }

    pub fn queued_bytes(&self) -> usize {
        lock(&self.feed.queue).queued_bytes()
    }

    /// A future that completes at the next wake-up. Create it *before* checking for data.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.feed.notify.notified()
    }

    pub fn is_ended(&self) -> bool {
        self.feed.ended.load(Ordering::Acquire)
    }

    /// The source is gone. Listeners move to `fallback` if given, else they finish what is
    /// queued and leave.
    pub fn end(&self, fallback: Option<Arc<Mount>>) {
        if let Some(f) = fallback {
            self.move_listeners_to(f);
        }
        self.feed.ended.store(true, Ordering::Release);
        self.feed.notify.notify_waiters();
    }

    /// Ask every current listener to continue on `target` (fallback, override, moveclients),
    /// after what is queued here now. Listeners pausing between writes are woken at once.
    pub fn move_listeners_to(&self, target: Arc<Mount>) {
        let until = self.tail();
        *lock(&self.moves.redirect) = Some(Redirect { target, until });
        self.moves.epoch.fetch_add(1, Ordering::AcqRel);
        self.feed.notify.notify_waiters();
        self.feed.surge.notify_waiters();
    }

    pub fn redirect_epoch(&self) -> u64 {
        self.moves.epoch.load(Ordering::Acquire)
    }

    pub fn redirect(&self) -> Option<Redirect> {
        lock(&self.moves.redirect).clone()
    }

    pub fn metadata(&self) -> Metadata {
        read(&self.titles.current).clone()
    }

    pub fn meta_version(&self) -> u64 {
        self.titles.version.load(Ordering::Acquire)
    }

    /// The ICY metadata interval for a listener that did (`asked`) or did not send
    /// `Icy-MetaData: 1`; 0 = plain stream. As icecast2: only generic streams (MP3, AAC)
    /// carry ICY metadata, never WebM, and Ogg only where the mount opts in, because a
    /// player that asks (mplayer) then finds no Ogg demuxer for the interleaved bytes.
    pub fn listener_metaint(&self, asked: bool) -> usize {
        let carries_icy = match self.family {
            Family::Generic => true,
            Family::Ogg => self.settings.icy_in_ogg,
            Family::Webm => false,
        };
        if asked && carries_icy {
            self.settings.metaint
        } else {
            0
        }
    }

    /// Current ICY block and its version, for a listener deciding what to insert.
    pub fn icy_block(&self) -> (u64, Bytes) {
        let m = read(&self.titles.current);
        (
            self.titles.version.load(Ordering::Acquire),
            m.icy_block.clone(),
        )
    }

    /// Set the title; returns the new metadata version (see [`Mount::meta_version`]), by which
    /// the source session tells its own updates from admin ones.
    pub fn set_metadata(
        &self,
        title: Option<String>,
        artist: Option<String>,
        url: Option<String>,
    ) -> u64 {
        let m = Metadata::new(title, artist, url);
        *write(&self.titles.current) = m;
        self.stats.metadata_updates.fetch_add(1, Ordering::Relaxed);
        self.titles.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Try to admit one more listener under `max-listeners`.
    pub fn try_add_listener(&self) -> bool {
        let max = self.settings.max_listeners.unwrap_or(usize::MAX);
        let mut cur = self.stats.listeners.load(Ordering::Acquire);
        loop {
            if cur >= max {
                return false;
            }
            match self.stats.listeners.compare_exchange(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.stats
                        .listener_peak
                        .fetch_max(cur + 1, Ordering::Relaxed);
                    self.stats
                        .listener_connections
                        .fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Count a listener that arrives by moving, which max-listeners does not refuse.
    pub fn add_moved_listener(&self) {
        let n = self.stats.listeners.fetch_add(1, Ordering::AcqRel) + 1;
        self.stats.listener_peak.fetch_max(n, Ordering::Relaxed);
    }

    pub fn remove_listener(&self) {
        let _ = self
            .stats
            .listeners
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn listener_count(&self) -> usize {
        self.stats.listeners.load(Ordering::Acquire)
    }

    pub fn register_listener(&self, id: u64, entry: ListenerEntry) {
        lock(&self.listeners).insert(id, entry);
    }

    /// Is `user` listening here already?
    pub fn has_user(&self, user: &str) -> bool {
        lock(&self.listeners)
            .values()
            .any(|l| l.username.as_deref() == Some(user))
    }

    /// Register an authenticated listener unless its user is already listening here
    /// (icecast's `allow_duplicate_users = 0`). Check and insert share one lock, so two
    /// concurrent logins of one user cannot both get in.
    pub fn register_unique_user(&self, id: u64, entry: ListenerEntry) -> bool {
        let mut table = lock(&self.listeners);
        if entry.username.is_some() && table.values().any(|l| l.username == entry.username) {
            return false;
        }
        table.insert(id, entry);
        true
    }

    pub fn unregister_listener(&self, id: u64) -> Option<ListenerEntry> {
        lock(&self.listeners).remove(&id)
    }

    /// Wake every listener's kick (shutdown); each then checks why it was woken.
    pub fn kick_all(&self) {
        for entry in lock(&self.listeners).values() {
            entry.kick.kick();
        }
    }

    pub fn listeners(&self) -> Vec<(u64, ListenerEntry)> {
        let mut v: Vec<_> = lock(&self.listeners)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(content_type: &str, icy_in_ogg: bool) -> Mount {
        let mut settings = MountSettings::resolve(&Config::default(), "/m");
        settings.icy_in_ogg = icy_in_ogg;
        let info = SourceInfo {
            stream: crate::documents::StreamFacts {
                content_type: content_type.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        Mount::new("/m", info, settings, None)
    }

    #[test]
    fn icy_metadata_only_where_icecast2_sends_it_or_the_mount_opts_in() {
        let cases = [
            ("audio/mpeg", false, DEFAULT_METAINT),
            ("audio/aac", false, DEFAULT_METAINT),
            ("application/ogg", false, 0),
            ("audio/ogg", true, DEFAULT_METAINT),
            ("video/webm", false, 0),
            ("video/webm", true, 0),
        ];
        for (content_type, opt_in, want) in cases {
            let m = mount(content_type, opt_in);
            assert_eq!(
                m.listener_metaint(true),
                want,
                "{content_type} opt-in {opt_in}"
            );
            assert_eq!(m.listener_metaint(false), 0, "{content_type} not asked");
        }
    }
}
