//! A small thread team for the fast backend's parallel loops: the calling thread plus
//! `threads - 1` persistent helpers that poll briefly between jobs (then sleep), so that the
//! ~200 matmuls of a decode step each start within a microsecond or so — rayon's
//! inject-and-wake costs tens of microseconds per call, a large share of a few-ms token.
//! The thread count: `ORCD_THREADS`, else `RAYON_NUM_THREADS`, else the CPU count.
//!
//! `par_for(n, f)` runs `f(0..n)`, each index exactly once; indices are handed out by an atomic
//! counter. The caller never waits for a helper that has not started: a helper joins a job only
//! while it is open, and the caller closes it once every index is taken, then waits only for the
//! helpers that joined (so a helper descheduled by a busy machine costs nothing). Nested calls,
//! calls while another thread uses the team, and `n <= 1` run serially on the caller — same
//! results: callers only use `par_for` where each index computes a fixed part of the output.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// How long an idle helper polls for the next job before it sleeps (spin iterations, ~0.2 ms).
const SPIN: u32 = 1 << 13;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// `generation << 1 | open`.
    state: AtomicU64,
    job: Mutex<Option<SendJob>>,
    n: AtomicUsize,
    next: AtomicUsize,
    /// Helpers working on the open job.
    active: AtomicUsize,
    panicked: AtomicBool,
    /// Helpers asleep (or about to be) on `wake`: the caller takes the lock and notifies only
    /// when there is one (a `notify_all` is a system call even with no waiter).
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

#[derive(Clone, Copy)]
struct SendJob(Job);
// SAFETY: the pointee is `Sync` and outlives every use (see `par_for`).
unsafe impl Send for SendJob {}

struct Team {
    shared: Arc<Shared>,
    helpers: usize,
    busy: Mutex<()>,
}

thread_local! {
    static IN_TEAM: Cell<bool> = const { Cell::new(false) };
}

fn team() -> &'static Team {
    static T: OnceLock<Team> = OnceLock::new();
    T.get_or_init(|| {
        let from_env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
        let threads = from_env("ORCD_THREADS")
            .or_else(|| from_env("RAYON_NUM_THREADS"))
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: Mutex::new(None),
            n: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut helpers = 0;
        for i in 1..threads {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name(format!("orcd-cpu-fast-{i}")).spawn(move || helper(&s));
            if spawned.is_ok() {
                helpers += 1;
            }
        }
        Team { shared, helpers, busy: Mutex::new(()) }
    })
}

/// Number of threads `par_for` uses.
pub fn threads() -> usize {
    team().helpers + 1
}

fn run_chunks(s: &Shared, f: &(dyn Fn(usize) + Sync)) {
    let n = s.n.load(Ordering::Acquire);
    loop {
        let i = s.next.fetch_add(1, Ordering::AcqRel);
        if i >= n {
            break;
        }
        if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
            s.panicked.store(true, Ordering::Release);
        }
    }
}

fn helper(s: &Shared) {
    IN_TEAM.with(|c| c.set(true));
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        let st = loop {
            let st = s.state.load(Ordering::Acquire);
            if st >> 1 != seen >> 1 && st & 1 == 1 {
                break st;
            }
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                let mut g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                // Counted before the state is read again (both SeqCst): a caller that opens a job
                // after this read sees the count and notifies; one that opened it before is seen here.
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                loop {
                    let st = s.state.load(Ordering::SeqCst);
                    if st >> 1 != seen >> 1 && st & 1 == 1 {
                        break;
                    }
                    g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
                spins = 0;
            }
        };
        seen = st;
        s.active.fetch_add(1, Ordering::AcqRel);
        // Join only if the job is still open: the caller waits for `active` only after closing.
        if s.state.load(Ordering::Acquire) == st {
            let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(SendJob(f)) = job {
                // SAFETY: the caller does not return (so the closure lives) while `active` > 0.
                run_chunks(s, unsafe { &*f });
            }
        }
        s.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `f(i)` for every `i in 0..n` on the team (see the module comment).
pub fn par_for(n: usize, f: &(dyn Fn(usize) + Sync)) {
    let serial = || (0..n).for_each(f);
    if n <= 1 || IN_TEAM.with(|c| c.get()) {
        return serial();
    }
    let t = team();
    if t.helpers == 0 {
        return serial();
    }
    let Ok(_guard) = t.busy.try_lock() else { return serial() };
    let s = &*t.shared;
    // SAFETY (lifetime erasure): a helper dereferences the job only while counted in `active`,
    // and this function closes the job and waits for `active` to reach 0 before returning.
    let erased: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
    *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(SendJob(erased));
    s.n.store(n, Ordering::Release);
    s.next.store(0, Ordering::Release);
    let generation = (s.state.load(Ordering::Acquire) >> 1) + 1;
    s.state.store(generation << 1 | 1, Ordering::SeqCst);
    if s.sleepers.load(Ordering::SeqCst) > 0 {
        // Under the lock: a helper between counting itself and waiting holds it, so the
        // notification cannot fall before its wait.
        let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
    IN_TEAM.with(|c| c.set(true));
    run_chunks(s, f);
    IN_TEAM.with(|c| c.set(false));
    s.state.store(generation << 1, Ordering::Release);
    let mut spins = 0u32;
    while s.active.load(Ordering::Acquire) > 0 {
        if spins < SPIN {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if s.panicked.swap(false, Ordering::AcqRel) {
        panic!("a cpu_fast worker panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn every_index_once_and_nested_calls_run(#[values(0, 1, 2, 7, 100)] n: usize) {
        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        par_for(n, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
            par_for(3, &|_| {});
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{n}");
    }

    #[test]
    fn concurrent_callers_are_fine() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..50 {
                        par_for(10, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 50 * 10);
    }
}
