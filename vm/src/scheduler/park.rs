//! Parking an idle scheduler thread until work, a timer or shutdown wakes
//! it.

use super::*;

pub(crate) struct Parker {
    flag: Mutex<bool>,
    cv: Condvar,
    /// The scheduler parks in the poller's `epoll_wait`, not on `cv`.
    pub(crate) polling: std::sync::atomic::AtomicBool,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            flag: Mutex::new(false),
            cv: Condvar::new(),
            polling: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether an unpark is pending.
    pub(crate) fn is_unparked(&self) -> bool {
        *lock(&self.flag)
    }

    /// Forgets a pending unpark (the scheduler woke anyway).
    pub(crate) fn clear(&self) {
        *lock(&self.flag) = false;
    }

    pub(crate) fn park(&self, deadline: Option<Instant>) {
        let mut g = lock(&self.flag);
        while !*g {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *g = false;
    }

    pub(crate) fn unpark(&self) {
        *lock(&self.flag) = true;
        self.cv.notify_one();
    }
}
