//! The OTP layer's rules (LANGUAGE.md §3–§4), one Caravan program each in
//! `tests/otp/`: run by the real `caravan` binary with 1, 2 and 4
//! schedulers, each must print exactly `tests/otp/NAME.out` and exit 0.
//! Crash lines on stderr are expected (processes crash on purpose); a VM
//! failure (a panic, an internal error) is not.

#[path = "otp/harness.rs"]
mod harness;

use std::time::Duration;

fn golden(name: &str) {
    let file = harness::root()
        .join("tests/otp")
        .join(format!("{name}.cvn"));
    let expected = std::fs::read_to_string(
        harness::root()
            .join("tests/otp")
            .join(format!("{name}.out")),
    )
    .expect("expected output");
    for s in [1, 2, 4] {
        harness::check(&file, s, &[], &expected, Duration::from_secs(60));
    }
}

#[test]
fn linked_crash_propagates() {
    golden("links");
}

#[test]
fn trapped_exit_arrives_as_a_message() {
    golden("trap_exits");
}

#[test]
fn monitor_notice_exactly_once() {
    golden("monitors");
}

#[test]
fn strategies_restart_the_right_children_in_order() {
    golden("strategies");
}

#[test]
fn restart_intensity_over_a_sliding_window() {
    golden("intensity");
}

#[test]
fn nested_supervisor_restarts_with_a_fresh_count() {
    golden("nested");
}

#[test]
fn shutdown_in_reverse_order_with_timeout_then_killed() {
    golden("shutdown");
}

#[test]
fn server_init_handle_call_stop() {
    golden("gen_server");
}

#[test]
fn registry_names_are_freed_and_re_registered() {
    golden("registry_names");
}

#[test]
fn store_copies_and_dies_with_its_owner() {
    golden("store_tables");
}

#[test]
fn timers_send_after_and_cancel() {
    golden("timers");
}
