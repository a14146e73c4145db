//! Who listens for `Captured`. As systemd's manager does with its signals (`Subscribe()` on
//! `org.freedesktop.systemd1.Manager`), the daemon sends them only while some bus client has
//! asked: a broadcast nobody listens to still costs this daemon a serialization and dbus-daemon
//! a message to route, for every record. That is hundreds a second on a busy machine, and about
//! 800 during each boot, when nobody has subscribed yet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::AbortHandle;

use crate::lock;

#[derive(Debug, Default)]
pub struct Subscribers {
    /// A subscriber's unique bus name, and the task that forgets it when it leaves the bus.
    names: Mutex<HashMap<String, AbortHandle>>,
    /// `Captured` signals sent (counted as each goes out).
    sent: AtomicU64,
}

impl Subscribers {
    /// Adds `name`, whose departure `watcher` watches. False when it was subscribed already:
    /// `watcher` is then stopped and the first one kept.
    pub fn add(&self, name: &str, watcher: AbortHandle) -> bool {
        let mut names = lock(&self.names);
        if names.contains_key(name) {
            watcher.abort();
            return false;
        }
        names.insert(name.to_string(), watcher);
        true
    }

    /// Removes `name` and stops its watcher. False when it was not subscribed.
    pub fn remove(&self, name: &str) -> bool {
        match lock(&self.names).remove(name) {
            Some(watcher) => {
                watcher.abort();
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.names).is_empty()
    }

    pub fn len(&self) -> usize {
        lock(&self.names).len()
    }

    pub fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn idle_task() -> tokio::task::JoinHandle<()> {
        tokio::spawn(std::future::pending())
    }

    #[tokio::test]
    async fn a_name_counts_once_and_removal_stops_its_watcher() {
        let subscribers = Subscribers::default();
        assert!(subscribers.is_empty());
        let first = idle_task();
        assert!(subscribers.add(":1.7", first.abort_handle()));
        let second = idle_task();
        assert!(!subscribers.add(":1.7", second.abort_handle()));
        assert!(second.await.unwrap_err().is_cancelled());
        assert_eq!(subscribers.len(), 1);

        assert!(!subscribers.remove(":1.8"));
        assert!(subscribers.remove(":1.7"));
        assert!(first.await.unwrap_err().is_cancelled());
        assert!(subscribers.is_empty());
        assert!(!subscribers.remove(":1.7"));
    }
}
