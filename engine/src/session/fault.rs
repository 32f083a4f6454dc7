//! Faults a test can plan for the steps of every session in its process (cargo feature
//! `fault-injection`, which only the workspace's tests turn on): a step that fails with an
//! error, or that panics, so that the tests can show the engine thread reports it and goes on.
//! Each planned fault fires once, at the first step of that index any session takes.

use std::sync::Mutex;

use super::error::SessionError;

/// What a planned step does instead of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails with [`SessionError::Injected`].
    Fail,
    /// Panics (inside the model call, as a bug in a kernel would).
    Panic,
}

static PLAN: Mutex<Vec<(usize, Fault)>> = Mutex::new(Vec::new());

/// Makes the next step of index `step_idx` that any session takes do `fault`.
///
/// # Panics
/// If a thread panicked while holding the plan.
pub fn inject(step_idx: usize, fault: Fault) {
    PLAN.lock().expect("the fault plan").push((step_idx, fault));
}

/// Forgets every planned fault that has not fired.
///
/// # Panics
/// If a thread panicked while holding the plan.
pub fn clear() {
    PLAN.lock().expect("the fault plan").clear();
}

/// Fires the fault planned for `step_idx`, if any: called as a session's step starts.
pub(crate) fn before_step(step_idx: usize) -> Result<(), SessionError> {
    let fault = {
        let mut plan =
            PLAN.lock().map_err(|_| SessionError::Setup("the fault plan is poisoned".to_owned()))?;
        let found = plan.iter().position(|&(at, _)| at == step_idx);
        found.map(|idx| plan.remove(idx).1)
    };
    match fault {
        None => Ok(()),
        Some(Fault::Fail) => Err(SessionError::Injected { step_idx }),
        Some(Fault::Panic) => panic!("injected panic at step {step_idx}"),
    }
}
