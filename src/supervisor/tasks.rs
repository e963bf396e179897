//! Keyed background tasks and their stop signals: start one, stop one, bring a set in line
//! with a [`Plan`], and wait for all of them to finish. A task started under a key waits for
//! the previous task of that key to finish first (so a restarted splitter can bind the port
//! its predecessor held). Nothing here knows what the tasks do; nothing here blocks.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::reconcile::{self, Plan};

/// A task's stop signal. The owner asks once; an owner that went away counts as asking.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A signal and the sender that raises it (dropping the sender raises it too).
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Has the stop been asked for?
    pub fn is_requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Completes once the stop is asked for (at once if it already was).
    pub async fn requested(&mut self) {
        // An error means the sender is gone, which asks for the stop too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Completes when a task has finished (or was aborted).
#[derive(Debug, Clone)]
struct Done(watch::Receiver<()>);

impl Done {
    fn is_done(&self) -> bool {
        self.0.has_changed().is_err()
    }

    async fn wait(mut self) {
        while self.0.changed().await.is_ok() {}
    }
}

/// One running task: what it was started from, what it publishes, and its signals.
struct Entry<K, W, S> {
    key: K,
    wanted: W,
    state: S,
    stop: watch::Sender<bool>,
    done: Done,
}

/// Running tasks by key, in start (or wanted) order. `W` is what a task was started from
/// (compared on reconcile); `S` is what it publishes for status (`()` for most).
pub struct TaskSet<K, W, S = ()> {
    running: Vec<Entry<K, W, S>>,
    /// Tasks told to stop that may still run: a successor under the same key waits.
    stopping: Vec<(K, Done)>,
    joins: JoinSet<()>,
}

impl<K, W, S> Default for TaskSet<K, W, S> {
    fn default() -> Self {
        TaskSet {
            running: Vec::new(),
            stopping: Vec::new(),
            joins: JoinSet::new(),
        }
    }
}

impl<K: PartialEq + Clone, W, S> TaskSet<K, W, S> {
    /// Start `task` under `key`, after any earlier task of that key has finished. The caller
    /// makes sure no task runs under `key` now (stop it first).
    pub fn start<F: Future<Output = ()> + Send + 'static>(
        &mut self,
        key: K,
        wanted: W,
        state: S,
        task: impl FnOnce(Stop) -> F,
    ) {
        let (stop, signal) = Stop::new();
        let task = task(signal);
        self.spawn(key, wanted, state, stop, task);
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(
        &mut self,
        key: K,
        wanted: W,
        state: S,
        stop: watch::Sender<bool>,
        task: F,
    ) {
        self.reap();
        let before: Vec<Done> = self
            .stopping
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, d)| d.clone())
            .collect();
        let (finished, done) = watch::channel(());
        self.joins.spawn(async move {
            // Dropped when the task ends or is aborted: that is what `Done` waits for.
            let _finished = finished;
            for d in before {
                d.wait().await;
            }
            task.await;
        });
        self.running.push(Entry {
            key,
            wanted,
            state,
            stop,
            done: Done(done),
        });
    }

    /// Ask the task under `key` to stop (it finishes on its own). Returns what it was
    /// started from and what it published.
    pub fn stop(&mut self, key: &K) -> Option<(W, S)> {
        let i = self.running.iter().position(|e| e.key == *key)?;
        let e = self.running.remove(i);
        // The task may have ended already; then there is nobody to tell.
        let _ = e.stop.send(true);
        self.stopping.push((e.key, e.done));
        Some((e.wanted, e.state))
    }

    /// Stop the tasks for which `keep` says false.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &W, &mut S) -> bool) {
        let gone: Vec<K> = self
            .running
            .iter_mut()
            .filter_map(|e| (!keep(&e.key, &e.wanted, &mut e.state)).then(|| e.key.clone()))
            .collect();
        for k in gone {
            self.stop(&k);
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.running.iter().any(|e| e.key == *key)
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// What the task under `key` was started from and publishes.
    pub fn get(&self, key: &K) -> Option<(&W, &S)> {
        self.running
            .iter()
            .find(|e| e.key == *key)
            .map(|e| (&e.wanted, &e.state))
    }

    /// The running tasks' keys, what they were started from and what they publish.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &W, &S)> {
        self.running.iter().map(|e| (&e.key, &e.wanted, &e.state))
    }

    /// Compare the running tasks with `wanted`.
    pub fn plan(&self, wanted: &[(K, W)]) -> Plan<K>
    where
        W: PartialEq,
    {
        let running: Vec<(K, &W)> = self
            .running
            .iter()
            .map(|e| (e.key.clone(), &e.wanted))
            .collect();
        reconcile::plan(&running, wanted)
    }

    /// Carry out `plan` (made by [`TaskSet::plan`] against `wanted`): stop what it stops or
    /// restarts, start what it starts or restarts with `start`, keep the rest running. The
    /// set ends up in wanted order.
    pub fn apply<F: Future<Output = ()> + Send + 'static>(
        &mut self,
        plan: &Plan<K>,
        wanted: Vec<(K, W)>,
        mut start: impl FnMut(&K, &W, Stop) -> (S, F),
    ) {
        for k in plan.stop.iter().chain(&plan.restart) {
            self.stop(k);
        }
        let mut kept = std::mem::take(&mut self.running);
        for (key, w) in wanted {
            if let Some(i) = kept.iter().position(|e| e.key == key) {
                self.running.push(kept.remove(i));
            } else if !self.contains(&key)
                && (plan.start.contains(&key) || plan.restart.contains(&key))
            {
                let (stop, signal) = Stop::new();
                let (state, task) = start(&key, &w, signal);
                self.spawn(key, w, state, stop, task);
            }
        }
        // A running task the plan did not know of (the plan is stale): not wanted, stop it.
        for e in kept {
            let _ = e.stop.send(true);
            self.stopping.push((e.key, e.done));
        }
    }

    /// Ask every task to stop.
    pub fn stop_all(&mut self) {
        let keys: Vec<K> = self.running.iter().map(|e| e.key.clone()).collect();
        for k in keys {
            self.stop(&k);
        }
    }

    /// Wait until every task started here has finished (running ones too: ask them to stop
    /// first, or let them see the server's shutdown).
    pub async fn join_all(&mut self) {
        while let Some(r) = self.joins.join_next().await {
            if let Err(e) = r {
                if e.is_panic() {
                    tracing::error!("a background task panicked: {e}");
                }
            }
        }
        self.running.clear();
        self.stopping.clear();
    }

    /// Abort whatever still runs (the shutdown grace ran out).
    pub fn abort_all(&mut self) {
        self.joins.abort_all();
    }

    /// Forget finished tasks.
    fn reap(&mut self) {
        while self.joins.try_join_next().is_some() {}
        self.stopping.retain(|(_, d)| !d.is_done());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    type Log = Arc<Mutex<Vec<String>>>;

    /// A task that logs its start, waits for its stop, lingers a little, and logs its end.
    fn task(log: &Log, name: String, mut stop: Stop) -> impl Future<Output = ()> + use<> {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(format!("start {name}"));
            stop.requested().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            log.lock().unwrap().push(format!("end {name}"));
        }
    }

    fn entries(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn reconcile_keeps_restarts_stops_and_starts_in_order() {
        let log: Log = Log::default();
        let mut set: TaskSet<&str, u32> = TaskSet::default();
        let apply = |set: &mut TaskSet<&str, u32>, wanted: Vec<(&'static str, u32)>| {
            let plan = set.plan(&wanted);
            set.apply(&plan, wanted, |k, v, stop| {
                ((), task(&log, format!("{k}{v}"), stop))
            });
        };
        apply(&mut set, vec![("a", 1), ("b", 1)]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(entries(&log), ["start a1", "start b1"]);

        // b changes, a stays, c comes: b's successor waits until b1 has finished.
        apply(&mut set, vec![("c", 1), ("a", 1), ("b", 2)]);
        let keys: Vec<&str> = set.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(keys, ["c", "a", "b"]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let got = entries(&log);
        let at = |e: &str| got.iter().position(|g| g == e).unwrap_or(usize::MAX);
        assert!(at("end b1") < at("start b2"), "{got:?}");
        assert_eq!(at("end a1"), usize::MAX, "a was kept: {got:?}");
        assert!(at("start c1") < got.len(), "{got:?}");

        // Everything removed: all stop, and join_all returns once they have finished.
        apply(&mut set, Vec::new());
        assert!(set.is_empty());
        tokio::time::timeout(Duration::from_secs(2), set.join_all())
            .await
            .expect("every task finished");
        let got = entries(&log);
        for e in ["end a1", "end b2", "end c1"] {
            assert!(got.iter().any(|g| g == e), "{e}: {got:?}");
        }
    }

    #[tokio::test]
    async fn a_dropped_owner_stops_its_tasks_and_abort_ends_stragglers() {
        let (tx, mut stop) = Stop::new();
        assert!(!stop.is_requested());
        drop(tx);
        assert!(stop.is_requested());
        tokio::time::timeout(Duration::from_secs(1), stop.requested())
            .await
            .expect("a dropped sender asks for the stop");

        let mut set: TaskSet<u8, ()> = TaskSet::default();
        set.start(1, (), (), |_stop| std::future::pending::<()>());
        set.abort_all();
        tokio::time::timeout(Duration::from_secs(1), set.join_all())
            .await
            .expect("aborted tasks count as finished");
    }
}
