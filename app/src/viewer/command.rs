//! Every change of the app's state that a panel or view asks for, as one command type applied
//! in one place ([`super::StepscopeApp`]'s `apply`), after the panels have drawn: panels read
//! the state and push commands; nothing but `apply` writes the cursor, the seed, the view or the
//! tab.

use std::path::PathBuf;

use super::frame_view::FramePointer;
use super::gpu::Colormap;
use super::step_view::StepView;
use super::time_control::TimeCommand;

/// One change of app state.
#[derive(Debug, Clone, PartialEq)]
pub enum AppCommand {
    /// Move the step cursor, play, pause, change the speed.
    Time(TimeCommand),
    /// Show this seed (an index into the manifest's seeds) in every view.
    SelectSeed(usize),
    /// Show this per-step tensor.
    SelectView(StepView),
    /// Show the view with this id (see [`super::views::registered_views`]): make it the
    /// active tab where it is stacked.
    SelectTab(&'static str),
    /// Lay the views out as tabs again, the first one shown.
    ResetLayout,
    /// The colormap of every scalar picture (layers, seeds, probes, attention).
    SetColormap(Colormap),
    /// The pointer pressed on a frame pixel: a click asks for attention, a drag paints (live).
    FramePointer(FramePointer),
    /// Open a trajectory or probe file in place of the current one.
    Open(PathBuf),
    /// Show the open run at this index of the runs list (see [`super::open_runs::OpenRuns`])
    /// in place of the one shown, which stays open.
    ShowRun(usize),
    /// Close the run shown (`None`; the newest other run is shown then) or an other open run.
    CloseRun(Option<usize>),
    /// Show where this token (a flat index into the token grid) attends at the cursor: asked
    /// of the engine in a live run, read from the file's attention captures otherwise.
    InspectAttention(usize),
}

/// Commands pushed while drawing one frame, applied in order at the end of it.
#[derive(Debug, Default)]
pub struct CommandQueue {
    commands: Vec<AppCommand>,
}

impl CommandQueue {
    pub fn push(&mut self, command: AppCommand) {
        self.commands.push(command);
    }

    /// Pushes [`AppCommand::Time`] of `TimeCommand::SetStep(step_idx)` if there is a step.
    pub fn go_to_step(&mut self, step_idx: Option<usize>) {
        if let Some(step_idx) = step_idx {
            self.push(AppCommand::Time(TimeCommand::SetStep(step_idx)));
        }
    }

    /// The commands so far, oldest first, leaving the queue empty.
    pub fn take(&mut self) -> Vec<AppCommand> {
        std::mem::take(&mut self.commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_come_out_in_the_order_they_were_pushed_once() {
        let mut queue = CommandQueue::default();
        queue.push(AppCommand::SelectSeed(2));
        queue.go_to_step(None);
        queue.go_to_step(Some(7));
        assert_eq!(queue.take(), [AppCommand::SelectSeed(2), AppCommand::Time(TimeCommand::SetStep(7))]);
        assert!(queue.take().is_empty());
    }
}
