//! The step cursor: which denoising step the views show, and whether it plays.
//!
//! [`TimeControl`] is plain state with no UI in it. Widgets and keys send it [`TimeCommand`]s, and
//! [`TimeControl::advance`] moves it along while it plays; every view reads
//! [`TimeControl::step_idx`].

/// Playback speeds the fps field accepts, in steps per second.
pub const FPS_RANGE: std::ops::RangeInclusive<f32> = 0.5..=120.0;

/// A change to the step cursor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeCommand {
    /// Go to this step (clamped to the run).
    SetStep(usize),
    /// Move by this many steps, clamped at the first and last step.
    Step(isize),
    /// Go to the first step.
    First,
    /// Go to the last step.
    Last,
    /// Play if paused, pause if playing.
    TogglePlay,
    /// Set the playback speed in steps per second (clamped to [`FPS_RANGE`]).
    SetFps(f32),
    /// Whether playing past the last step starts again from the first.
    SetLooping(bool),
}

/// The step cursor over a run of `num_steps` denoising steps.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeControl {
    step_idx: usize,
    num_steps: usize,
    playing: bool,
    fps: f32,
    looping: bool,
    /// Seconds of play time not yet turned into a step.
    pending_s: f32,
}

impl TimeControl {
    /// A paused cursor on the first of `num_steps` steps.
    #[must_use]
    pub fn new(num_steps: usize, fps: f32, looping: bool) -> Self {
        Self {
            step_idx: 0,
            num_steps,
            playing: false,
            fps: fps.clamp(*FPS_RANGE.start(), *FPS_RANGE.end()),
            looping,
            pending_s: 0.0,
        }
    }

    /// The step the views show.
    #[must_use]
    pub fn step_idx(&self) -> usize {
        self.step_idx
    }

    /// How many steps the run has.
    #[must_use]
    pub fn num_steps(&self) -> usize {
        self.num_steps
    }

    /// The last step index (0 for an empty run).
    #[must_use]
    pub fn last_step_idx(&self) -> usize {
        self.num_steps.saturating_sub(1)
    }

    #[must_use]
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Playback speed in steps per second.
    #[must_use]
    pub fn fps(&self) -> f32 {
        self.fps
    }

    #[must_use]
    pub fn is_looping(&self) -> bool {
        self.looping
    }

    /// Applies one command.
    pub fn apply(&mut self, command: TimeCommand) {
        match command {
            TimeCommand::SetStep(step_idx) => self.step_idx = step_idx.min(self.last_step_idx()),
            TimeCommand::Step(delta) => {
                self.step_idx = self.step_idx.saturating_add_signed(delta).min(self.last_step_idx());
            }
            TimeCommand::First => self.step_idx = 0,
            TimeCommand::Last => self.step_idx = self.last_step_idx(),
            TimeCommand::TogglePlay => {
                self.playing = !self.playing && self.num_steps > 1;
                self.pending_s = 0.0;
                // Playing from the end of a run that does not loop starts it again.
                if self.playing && !self.looping && self.step_idx == self.last_step_idx() {
                    self.step_idx = 0;
                }
            }
            TimeCommand::SetFps(fps) => {
                if fps.is_finite() {
                    self.fps = fps.clamp(*FPS_RANGE.start(), *FPS_RANGE.end());
                }
            }
            TimeCommand::SetLooping(looping) => self.looping = looping,
        }
    }

    /// Moves the cursor on by `dt_s` seconds of play time; does nothing while paused. Stops at
    /// the last step unless looping. Returns whether it is still playing (and so wants another
    /// frame).
    pub fn advance(&mut self, dt_s: f32) -> bool {
        if !self.playing {
            return false;
        }
        self.pending_s += dt_s.max(0.0);
        let step_duration_s = 1.0 / self.fps;
        while self.pending_s >= step_duration_s {
            self.pending_s -= step_duration_s;
            if self.step_idx < self.last_step_idx() {
                self.step_idx += 1;
            } else if self.looping {
                self.step_idx = 0;
            } else {
                self.playing = false;
                self.pending_s = 0.0;
                break;
            }
        }
        self.playing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> TimeControl {
        TimeControl::new(5, 10.0, false)
    }

    #[test]
    fn steps_are_clamped_to_the_run() {
        let mut time = cursor();
        time.apply(TimeCommand::Step(-1));
        assert_eq!(time.step_idx(), 0);
        time.apply(TimeCommand::Step(3));
        assert_eq!(time.step_idx(), 3);
        time.apply(TimeCommand::Step(7));
        assert_eq!(time.step_idx(), 4);
        time.apply(TimeCommand::SetStep(99));
        assert_eq!(time.step_idx(), 4);
        time.apply(TimeCommand::First);
        assert_eq!(time.step_idx(), 0);
        time.apply(TimeCommand::Last);
        assert_eq!(time.step_idx(), 4);
    }

    #[test]
    fn playing_advances_one_step_per_frame_period() {
        let mut time = cursor();
        time.apply(TimeCommand::TogglePlay);
        assert!(time.advance(0.05));
        assert_eq!(time.step_idx(), 0, "half a step period is not a step yet");
        assert!(time.advance(0.05));
        assert_eq!(time.step_idx(), 1);
        assert!(time.advance(0.25));
        assert_eq!(time.step_idx(), 3, "a long frame moves several steps");
    }

    #[test]
    fn playing_stops_at_the_end_unless_looping() {
        let mut time = cursor();
        time.apply(TimeCommand::TogglePlay);
        assert!(!time.advance(1.0));
        assert_eq!(time.step_idx(), 4);
        assert!(!time.is_playing());

        // Play again from the end restarts the run.
        time.apply(TimeCommand::TogglePlay);
        assert_eq!(time.step_idx(), 0);

        time.apply(TimeCommand::SetLooping(true));
        time.apply(TimeCommand::Last);
        assert!(time.advance(0.1));
        assert_eq!(time.step_idx(), 0, "looping wraps to the first step");
    }

    #[test]
    fn paused_cursor_does_not_move() {
        let mut time = cursor();
        assert!(!time.advance(10.0));
        assert_eq!(time.step_idx(), 0);
    }

    #[test]
    fn fps_is_clamped_and_ignores_non_finite_values() {
        let mut time = cursor();
        time.apply(TimeCommand::SetFps(1000.0));
        assert!((time.fps() - FPS_RANGE.end()).abs() < f32::EPSILON);
        time.apply(TimeCommand::SetFps(f32::NAN));
        assert!((time.fps() - FPS_RANGE.end()).abs() < f32::EPSILON);
        time.apply(TimeCommand::SetFps(0.0));
        assert!((time.fps() - FPS_RANGE.start()).abs() < f32::EPSILON);
    }

    #[test]
    fn a_single_step_run_never_plays() {
        let mut time = TimeControl::new(1, 10.0, true);
        time.apply(TimeCommand::TogglePlay);
        assert!(!time.is_playing());
    }
}
