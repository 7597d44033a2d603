use std::time::{Duration, Instant, SystemTime};

use super::{Budget, Priority};
use crate::broker::RateLimitSnapshot;

const SEC: Duration = Duration::from_secs(1);

fn take_all(b: &mut Budget, p: Priority, now: Instant) -> u32 {
    let mut n = 0;
    while b.try_take(p, now).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn reads_never_touch_the_reserve_and_mutations_get_it() {
    let t0 = Instant::now();
    let mut b = Budget::new(20, 10 * SEC, 20);
    // Refreshes: half of their 12 at once, the rest as the window goes by.
    assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
    assert_eq!(take_all(&mut b, Priority::Refresh, t0 + 9 * SEC), 6);
    // Reads of something new may use the rest of the read share (16) at any time.
    assert_eq!(take_all(&mut b, Priority::Read, t0 + 9 * SEC), 4);
    // Confirming reads may use half of the reserve, mutations the rest.
    assert_eq!(take_all(&mut b, Priority::Confirm, t0 + 9 * SEC), 2);
    assert_eq!(take_all(&mut b, Priority::Mutation, t0 + 9 * SEC), 2);
    // Spent: the next chance is the next window.
    let next = b.try_take(Priority::Mutation, t0 + 9 * SEC).unwrap_err();
    assert_eq!(next, t0 + 10 * SEC);
    assert!(
        b.try_take(Priority::Refresh, t0 + 10 * SEC).is_ok(),
        "new window"
    );
}

#[test]
fn refreshes_leave_room_for_reads_of_something_new() {
    let t0 = Instant::now();
    let mut b = Budget::new(20, 10 * SEC, 20);
    // Even at the end of the window, refreshes stop at 12 of the 16 reads.
    assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
    let late = t0 + 10 * SEC - SEC / 10;
    assert_eq!(take_all(&mut b, Priority::Refresh, late), 6);
    assert_eq!(take_all(&mut b, Priority::Read, late), 4);
}

#[test]
fn a_paced_refresh_is_told_when_its_next_slot_opens() {
    let t0 = Instant::now();
    let mut b = Budget::new(20, 10 * SEC, 20);
    assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
    let next = b.try_take(Priority::Refresh, t0).unwrap_err();
    assert!(next > t0 && next < t0 + 2 * SEC, "{:?}", next - t0);
    assert!(b.try_take(Priority::Refresh, next).is_ok());
}

#[test]
fn headers_that_show_more_spending_win() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut b = Budget::new(200, 60 * SEC, 20);
    b.try_take(Priority::Read, t0).unwrap();
    // Someone else spent 195 of the key's 200.
    let snap = RateLimitSnapshot {
        limit: 200,
        remaining: 5,
        reset_at: wall + 30 * SEC,
        observed_at: wall,
    };
    b.observe(&snap, t0, wall);
    assert!(b.try_take(Priority::Read, t0).is_err());
    assert_eq!(take_all(&mut b, Priority::Mutation, t0), 5);
    // ... and the window ends when the broker says, not 60 s after our first call.
    assert!(b.try_take(Priority::Read, t0 + 30 * SEC).is_ok());
}

#[test]
fn headers_teach_a_smaller_limit_and_window() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut b = Budget::new(200, 60 * SEC, 20);
    b.try_take(Priority::Read, t0).unwrap();
    let snap = RateLimitSnapshot {
        limit: 20,
        remaining: 19,
        reset_at: wall + 2 * SEC,
        observed_at: wall,
    };
    b.observe(&snap, t0, wall);
    // 16 reads in the window in all, of which one is spent.
    assert_eq!(
        take_all(&mut b, Priority::Read, t0 + 2 * SEC - SEC / 100),
        15
    );
}

#[test]
fn a_snapshot_of_an_ended_window_or_out_of_order_is_ignored() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut b = Budget::new(20, 10 * SEC, 20);
    let fresh = RateLimitSnapshot {
        limit: 20,
        remaining: 18,
        reset_at: wall + 5 * SEC,
        observed_at: wall,
    };
    b.observe(&fresh, t0, wall);
    let older = RateLimitSnapshot {
        remaining: 0,
        observed_at: wall - SEC,
        ..fresh
    };
    b.observe(&older, t0, wall);
    let ended = RateLimitSnapshot {
        remaining: 0,
        reset_at: wall - SEC,
        observed_at: wall + SEC,
        ..fresh
    };
    b.observe(&ended, t0, wall);
    assert!(b.try_take(Priority::Read, t0).is_ok());
}

#[test]
fn a_429_blocks_everyone_until_retry_after() {
    let t0 = Instant::now();
    let mut b = Budget::new(20, 10 * SEC, 20);
    b.rate_limited(Some(3 * SEC), t0);
    assert_eq!(b.try_take(Priority::Mutation, t0 + SEC), Err(t0 + 3 * SEC));
    assert!(b.try_take(Priority::Mutation, t0 + 3 * SEC).is_ok());
}

#[test]
fn a_short_retry_after_does_not_spend_the_rest_of_the_window() {
    let t0 = Instant::now();
    let mut b = Budget::new(100, 60 * SEC, 20);
    assert!(b.try_take(Priority::Read, t0).is_ok());
    b.rate_limited(Some(SEC), t0);
    assert_eq!(b.try_take(Priority::Read, t0), Err(t0 + SEC));
    assert!(
        b.try_take(Priority::Read, t0 + SEC).is_ok(),
        "reads resume after Retry-After"
    );
}

#[test]
fn a_429_without_retry_after_waits_for_the_window() {
    let t0 = Instant::now();
    let mut b = Budget::new(100, 60 * SEC, 20);
    assert!(b.try_take(Priority::Read, t0).is_ok());
    b.rate_limited(None, t0);
    assert!(b.try_take(Priority::Read, t0 + 2 * SEC).is_err());
}

#[test]
fn a_zero_reserve_gives_reads_everything() {
    let t0 = Instant::now();
    let mut b = Budget::new(10, SEC, 0);
    assert_eq!(take_all(&mut b, Priority::Read, t0), 10);
}
