//! The sysmon thread (Go's `sysmon`): notices schedulers stuck in one
//! slice and hands their work to the others, and polls for I/O when no
//! scheduler has for [`NETPOLL_EVERY_MS`].

use super::*;

/// Sysmon period while some scheduler runs a process, and at most when
/// all are idle.
pub(crate) const SYSMON_TICK: std::time::Duration = std::time::Duration::from_millis(10);
const SYSMON_IDLE_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Sysmon polls for I/O when nobody has for this long (Go's sysmon: 10 ms).
pub(crate) const NETPOLL_EVERY_MS: u64 = 10;

/// Body of the sysmon thread (Go's `sysmon`, reduced): a scheduler seen
/// in the same slice at two consecutive ticks is stuck (a system call
/// outside `blocking_section`, a huge copy): its `runnext` and timers are
/// handed off and parked schedulers are woken to steal its queue.
///
/// `first_tick`: the wait before the first look (a sysmon started late
/// keeps its first look [`SYSMON_TICK`] after the VM's start).
pub(crate) fn sysmon_main(vm: Arc<Vm>, first_tick: std::time::Duration) {
    let n = vm.slots.len();
    let mut last = vec![u64::MAX; n];
    let mut handled = vec![false; n];
    let mut tick = first_tick;
    loop {
        {
            let d = lock(&vm.done);
            if vm.shutdown.load(Ordering::SeqCst) {
                return;
            }
            let _ = vm.done_cv.wait_timeout(d, tick);
        }
        if vm.shutdown.load(Ordering::SeqCst) {
            return;
        }
        vm.precise_ms();
        let mut any_running = false;
        for i in 0..n {
            let s = &vm.slots[i];
            let switches = s.switches.load(Ordering::Relaxed);
            let running = s.running.load(Ordering::Relaxed);
            any_running |= running;
            if running && switches == last[i] {
                if !handled[i] {
                    handled[i] = true;
                    vm.handoff(i);
                } else if !vm.stealers[i].is_empty() {
                    vm.notify_one();
                }
            } else {
                handled[i] = false;
            }
            last[i] = switches;
        }
        if any_running
            && vm
                .net
                .as_ref()
                .is_some_and(|n| n.poller.idle_ms() >= NETPOLL_EVERY_MS)
        {
            let mut woken = Vec::new();
            vm.netpoll_now(&mut woken);
            for p in woken {
                vm.push_injector(p);
            }
        }
        tick = if any_running {
            SYSMON_TICK
        } else {
            (tick * 2).min(SYSMON_IDLE_TICK)
        };
    }
}
