use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use super::*;

const QUIESCE: Duration = Duration::from_secs(5);

fn is_here<T>(e: &Entry<'_, T>) -> bool {
    matches!(e, Entry::Here(_))
}

/// Enter `gate` on a new thread; the answer comes back when the call got through.
fn enter_on_thread(gate: &Arc<Gate<u32>>, redirect: Redirect) -> mpsc::Receiver<Option<u32>> {
    let (tx, rx) = mpsc::channel();
    let gate = gate.clone();
    thread::spawn(move || {
        let answer = match gate.enter(redirect) {
            Entry::Here(_) => None,
            Entry::Successor(next) => Some(next),
            Entry::Skip | Entry::Refused => Some(u32::MAX),
        };
        let _ = tx.send(answer);
    });
    rx
}

#[test]
fn an_open_gate_counts_calls_in_and_out() {
    let gate = Gate::<u32>::new(1);
    let first = gate.enter(Redirect::Yes);
    assert!(is_here(&first));
    assert_eq!(gate.in_flight(), 1);
    drop(first);
    assert_eq!(gate.in_flight(), 0);
}

#[test]
fn a_pause_waits_for_the_call_inside_to_leave() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let left = Arc::new(AtomicBool::new(false));
    let (inside_tx, inside_rx) = mpsc::channel();
    let caller = {
        let (gate, left) = (gate.clone(), left.clone());
        thread::spawn(move || {
            let entry = gate.enter(Redirect::Yes);
            assert!(is_here(&entry));
            inside_tx.send(()).unwrap();
            thread::sleep(Duration::from_millis(150));
            left.store(true, Ordering::SeqCst);
            drop(entry);
        })
    };
    inside_rx.recv().unwrap();
    let paused = gate.pause(QUIESCE).expect("quiesces");
    assert!(
        left.load(Ordering::SeqCst),
        "the pause returned while a call was inside"
    );
    drop(paused);
    caller.join().unwrap();
}

#[test]
fn a_call_during_the_pause_waits_then_goes_to_the_successor() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let paused = gate.pause(QUIESCE).expect("nothing inside");
    let waiting = enter_on_thread(&gate, Redirect::Yes);
    assert!(
        waiting.recv_timeout(Duration::from_millis(150)).is_err(),
        "a call got through a paused gate"
    );
    paused.hand_over(7);
    assert_eq!(
        waiting.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some(7)
    );
    // Later calls through a stale route go to the successor too.
    assert!(matches!(gate.enter(Redirect::Yes), Entry::Successor(7)));
}

#[test]
fn a_failed_reload_lets_the_waiting_call_through_to_the_old_generation() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let paused = gate.pause(QUIESCE).expect("nothing inside");
    let waiting = enter_on_thread(&gate, Redirect::Yes);
    thread::sleep(Duration::from_millis(50));
    drop(paused);
    assert_eq!(waiting.recv_timeout(Duration::from_secs(5)).unwrap(), None);
    assert!(is_here(&gate.enter(Redirect::Yes)));
}

#[test]
fn after_the_hand_over_each_kind_of_call_goes_its_way() {
    let gate = Gate::<u32>::new(1);
    gate.pause(QUIESCE).unwrap().hand_over(9);
    assert!(matches!(gate.enter(Redirect::Yes), Entry::Successor(9)));
    assert!(
        is_here(&gate.enter(Redirect::Stay)),
        "a pinned exchange step"
    );
    assert!(matches!(gate.enter(Redirect::Drop), Entry::Skip), "a timer");
}

#[test]
fn a_call_that_waits_beyond_the_limit_is_refused_not_served_by_the_old_generation() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let paused = gate.pause(QUIESCE).expect("nothing inside");
    let waiter = {
        let gate = gate.clone();
        thread::spawn(move || matches!(gate.enter(Redirect::Yes), Entry::Refused))
    };
    assert!(waiter.join().unwrap(), "refused after {WAIT_LIMIT:?}");
    assert_eq!(gate.in_flight(), 0);
    paused.hand_over(3);
    assert!(matches!(gate.enter(Redirect::Yes), Entry::Successor(3)));
}

#[test]
fn a_nested_call_passes_a_pause_that_waits_for_its_outer_call() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let (inside_tx, inside_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let caller = {
        let gate = gate.clone();
        thread::spawn(move || {
            let outer = gate.enter(Redirect::Yes);
            inside_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // The pause is waiting for `outer`: the nested call must not wait for the pause.
            let nested = gate.enter(Redirect::Yes);
            assert!(is_here(&nested));
            drop(nested);
            drop(outer);
        })
    };
    inside_rx.recv().unwrap();
    let pauser = {
        let gate = gate.clone();
        thread::spawn(move || gate.pause(QUIESCE).map(drop).is_ok())
    };
    thread::sleep(Duration::from_millis(50));
    go_tx.send(()).unwrap();
    caller.join().unwrap();
    assert!(pauser.join().unwrap(), "the pause quiesced");
}

#[test]
fn the_pausing_thread_may_call_the_generation_itself() {
    let gate = Gate::<u32>::new(1);
    let paused = gate.pause(QUIESCE).unwrap();
    let entry = gate.enter(Redirect::Yes);
    assert!(is_here(&entry));
    assert_eq!(gate.in_flight(), 0, "a nested call is not counted");
    drop(entry);
    drop(paused);
}

#[test]
fn calls_that_do_not_leave_make_the_pause_fail_and_the_gate_opens_again() {
    let gate = Arc::new(Gate::<u32>::new(1));
    let (inside_tx, inside_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let caller = {
        let gate = gate.clone();
        thread::spawn(move || {
            let _entry = gate.enter(Redirect::Yes);
            inside_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        })
    };
    inside_rx.recv().unwrap();
    let busy = gate.pause(Duration::from_millis(100)).unwrap_err();
    assert_eq!(busy.calls, 1);
    assert!(busy.waited_ms >= 100, "{busy:?}");
    assert!(is_here(&gate.enter(Redirect::Yes)), "open again");
    done_tx.send(()).unwrap();
    caller.join().unwrap();
}
