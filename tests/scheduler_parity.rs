//! Parity of the schedulers with diffusers, against the fixtures in `tests/fixtures/scheduler/`
//! (written by `tests/reference/scheduler_fixtures.py` with diffusers 0.42.1, torch 2.15).
//!
//! Each fixture holds one run of a diffusers scheduler: its sigmas and timesteps, a random initial
//! sample `[1, 4, 1, 4, 4]` and one random velocity per step, and every sample `step()` returned.
//! Schedules must match exactly; the solvers, run free (each output is the next input), must stay
//! within `STEP_TOLERANCE` of diffusers at every step.

use anyhow::{Context, Result, ensure};
use candle_core::{DType, Device, Tensor};
use stepscope_engine::scheduler::{MAX_STEPS, SchedulerError, SchedulerKind, Solver};
use stepscope_tests::fixture;

/// Largest absolute difference allowed between a solver's f32 output and diffusers'.
const STEP_TOLERANCE: f32 = 1e-4;

const SHIFTS: [f64; 2] = [3.0, 5.0];
const EULER_STEPS: [usize; 3] = [5, 20, 50];
const UNIPC_STEPS: [usize; 3] = [6, 20, 50];

/// One diffusers run, loaded from its safetensors fixture.
struct Fixture {
    name: String,
    /// `[steps + 1]`
    sigmas: Vec<f64>,
    /// `[steps]`
    timesteps: Vec<f64>,
    /// `[1, 4, 1, 4, 4]`
    sample: Tensor,
    /// `[steps, 1, 4, 1, 4, 4]`
    velocities: Tensor,
    /// `[steps, 1, 4, 1, 4, 4]`
    prev_samples: Tensor,
}

impl Fixture {
    fn load(kind: SchedulerKind, shift: f64, steps: usize) -> Result<Self> {
        let name = format!("{kind}_shift{shift}_steps{steps}");
        let path = fixture(&format!("scheduler/{name}.safetensors"));
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut take = |key: &str| tensors.remove(key).with_context(|| format!("{name}: no tensor {key:?}"));
        let sigmas = take("sigmas")?.to_dtype(DType::F64)?.to_vec1()?;
        let timesteps = take("timesteps")?.to_dtype(DType::F64)?.to_vec1()?;
        let sample = take("sample")?;
        let velocities = take("velocities")?;
        let prev_samples = take("prev_samples")?;
        ensure!(timesteps.len() == steps && sigmas.len() == steps + 1, "{name}: unexpected lengths");
        Ok(Self { name, sigmas, timesteps, sample, velocities, prev_samples })
    }
}

fn all_fixtures() -> Result<Vec<(SchedulerKind, f64, usize, Fixture)>> {
    let mut fixtures = Vec::new();
    for shift in SHIFTS {
        for (kind, step_counts) in [(SchedulerKind::Euler, EULER_STEPS), (SchedulerKind::UniPc, UNIPC_STEPS)]
        {
            for steps in step_counts {
                fixtures.push((kind, shift, steps, Fixture::load(kind, shift, steps)?));
            }
        }
    }
    Ok(fixtures)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// Sigmas and timesteps are reproduced bit for bit (compared as f64 holding diffusers' f32 values;
/// UniPC's timesteps are diffusers' int64 values). Tolerance: exact.
#[test]
fn schedules_match_diffusers_exactly() -> Result<()> {
    for (kind, shift, steps, expected) in all_fixtures()? {
        let solver = Solver::new(kind, steps, shift)?;
        let schedule = solver.schedule();
        assert_eq!(schedule.sigmas, expected.sigmas, "{}: sigmas", expected.name);
        assert_eq!(schedule.timesteps, expected.timesteps, "{}: timesteps", expected.name);
    }
    Ok(())
}

/// Every step of every fixture, run free from the fixture's initial sample. Tolerance: 1e-4
/// absolute per element, f32.
#[test]
fn steps_match_diffusers() -> Result<()> {
    for (kind, shift, steps, expected) in all_fixtures()? {
        let mut solver = Solver::new(kind, steps, shift)?;
        let mut sample = expected.sample.clone();
        let mut worst = 0f32;
        for step_idx in 0..steps {
            let velocity = expected.velocities.get(step_idx)?;
            sample = solver.step(step_idx, &velocity, &sample)?;
            let error = max_abs_diff(&sample, &expected.prev_samples.get(step_idx)?)?;
            assert!(
                error <= STEP_TOLERANCE,
                "{}: step {step_idx} is off by {error:e} (tolerance {STEP_TOLERANCE:e})",
                expected.name
            );
            worst = worst.max(error);
        }
        assert!(solver.is_finished());
        println!("{}: max abs error over {steps} steps {worst:e}", expected.name);
    }
    Ok(())
}

/// A solver cloned mid-run (a forked session) continues exactly like the original, and stepping
/// the clone with other velocities leaves the original untouched. Tolerance: bit-exact.
#[test]
fn cloned_solver_continues_identically() -> Result<()> {
    const FORK_STEP: usize = 7;
    for kind in [SchedulerKind::Euler, SchedulerKind::UniPc] {
        let expected = Fixture::load(kind, 3.0, 20)?;
        let mut solver = Solver::new(kind, 20, 3.0)?;
        let mut sample = expected.sample.clone();
        for step_idx in 0..FORK_STEP {
            sample = solver.step(step_idx, &expected.velocities.get(step_idx)?, &sample)?;
        }

        // The fork goes its own way first, with other velocities...
        let mut fork = solver.clone();
        let mut fork_sample = sample.clone();
        for step_idx in FORK_STEP..20 {
            let other_velocity = expected.velocities.get(step_idx)?.affine(-1.0, 0.5)?;
            fork_sample = fork.step(step_idx, &other_velocity, &fork_sample)?;
        }
        assert!(fork.is_finished());

        // ...then a second fork and the original run on with the same velocities, in step.
        let mut twin = solver.clone();
        let mut twin_sample = sample.clone();
        for step_idx in FORK_STEP..20 {
            let velocity = expected.velocities.get(step_idx)?;
            sample = solver.step(step_idx, &velocity, &sample)?;
            twin_sample = twin.step(step_idx, &velocity, &twin_sample)?;
            assert_eq!(
                sample.flatten_all()?.to_vec1::<f32>()?,
                twin_sample.flatten_all()?.to_vec1::<f32>()?,
                "{kind}: step {step_idx}"
            );
        }
        let error = max_abs_diff(&sample, &expected.prev_samples.get(19)?)?;
        assert!(error <= STEP_TOLERANCE, "{kind}: the original drifted by {error:e} after the fork");
    }
    Ok(())
}

#[test]
fn bad_settings_are_errors() {
    for kind in [SchedulerKind::Euler, SchedulerKind::UniPc] {
        for steps in [0, MAX_STEPS + 1] {
            assert!(
                matches!(Solver::new(kind, steps, 3.0), Err(SchedulerError::InvalidSteps { .. })),
                "{kind}: {steps} steps"
            );
        }
        for shift in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                matches!(Solver::new(kind, 20, shift), Err(SchedulerError::InvalidShift { .. })),
                "{kind}: shift {shift}"
            );
        }
        assert!(Solver::new(kind, 1, 1.0).is_ok(), "{kind}: one step without shift");
        assert!(Solver::new(kind, MAX_STEPS, 0.5).is_ok(), "{kind}: the most steps, shift below 1");
    }
}

#[test]
fn bad_steps_are_errors_and_change_nothing() -> Result<()> {
    let device = Device::Cpu;
    for kind in [SchedulerKind::Euler, SchedulerKind::UniPc] {
        let mut solver = Solver::new(kind, 2, 3.0)?;
        let sample = Tensor::ones((4, 1, 2, 2), DType::F32, &device)?;
        let velocity = sample.zeros_like()?;

        let skipped = solver.step(1, &velocity, &sample);
        assert!(matches!(skipped, Err(SchedulerError::StepOutOfOrder { expected: 0, step_idx: 1 })));
        let wrong_shape = solver.step(0, &velocity.reshape((4, 2, 2))?, &sample);
        assert!(matches!(wrong_shape, Err(SchedulerError::ShapeMismatch { .. })));
        let wrong_dtype = solver.step(0, &velocity.to_dtype(DType::F64)?, &sample);
        assert!(matches!(wrong_dtype, Err(SchedulerError::DTypeMismatch { .. })));
        assert_eq!(solver.next_step_idx(), 0, "{kind}: a failed step must not advance");

        let sample = solver.step(0, &velocity, &sample)?;
        let repeated = solver.step(0, &velocity, &sample);
        assert!(matches!(repeated, Err(SchedulerError::StepOutOfOrder { expected: 1, step_idx: 0 })));
        solver.step(1, &velocity, &sample)?;
        assert!(solver.is_finished());
        let past_end = solver.step(2, &velocity, &sample);
        assert!(matches!(past_end, Err(SchedulerError::StepOutOfRange { step_idx: 2, steps: 2 })));
    }
    Ok(())
}
