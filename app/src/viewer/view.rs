//! What a view of the centre of the window is: one small trait, so that a new view is one new
//! file and one line in [`super::views::registered_views`]. A view reads the document and the
//! cursor from a [`ViewContext`], draws, and changes app state only by pushing
//! [`super::command::AppCommand`]s; what it remembers between sessions it saves as its own state.

use super::command::CommandQueue;
use super::document::Document;
use super::frame_levels::FrameLevels;
use super::frame_view::PixelMark;
use super::gpu::Colormap;
use super::open_runs::ParkedRun;
use super::stats_cache::StatsCache;
use super::step_view::StepView;
use super::tensor_cache::TensorCache;

/// Where the user is: the seed, step and per-step tensor every view follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seed_idx: usize,
    pub step_idx: usize,
    pub view: StepView,
}

/// What the views read and compute from, shared between them and cleared with the document.
#[derive(Debug, Default)]
pub struct ViewCaches {
    /// Tensors read from the document, as drawable `[C, F, H, W]` values.
    pub tensors: TensorCache,
    /// Frames of those tensors down-sampled to the size they are shown at.
    pub frame_levels: FrameLevels,
    /// Whole-run statistics (distances, diversity, scores), computed on the job thread, per
    /// document generation.
    pub stats: StatsCache,
}

impl ViewCaches {
    pub fn clear(&mut self) {
        self.tensors.clear();
        self.frame_levels.clear();
        self.stats.clear();
    }
}

/// What a live run lays over the frames: painted pixels, and what a click does.
#[derive(Debug, Clone, Default)]
pub struct FrameOverlay {
    pub marks: Vec<PixelMark>,
    pub click_hint: Option<&'static str>,
}

/// Everything a view draws from, and where it sends what the user asked for.
#[derive(Debug)]
pub struct ViewContext<'a> {
    pub document: &'a Document,
    /// The other runs open (files, or a live run not shown), to compare with `document`.
    pub other_runs: &'a mut [ParkedRun],
    pub cursor: Cursor,
    pub colormap: Colormap,
    pub caches: &'a mut ViewCaches,
    pub overlay: &'a FrameOverlay,
    pub commands: &'a mut CommandQueue,
}

/// Something that happened to the document that views may want to react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewEvent {
    /// Another document is shown (a file opened, a live run started).
    DocumentShown { num_seeds: usize },
    /// A live run gained a seed; `altered_from` names the seed it branched from when it is an
    /// altered copy (an intervention), to be shown next to it.
    SeedAdded { seed_idx: usize, altered_from: Option<usize> },
}

/// `state` as the JSON a view saves ([`View::save_state`]).
pub fn to_saved<T: serde::Serialize>(state: &T) -> Option<String> {
    serde_json::to_string(state).ok()
}

/// Replaces `state` with the saved JSON `saved` ([`View::load_state`]); a saved state that no
/// longer parses (an older version's) leaves `state` as it is.
pub fn restore_saved<T: serde::de::DeserializeOwned>(state: &mut T, saved: &str) {
    if let Ok(restored) = serde_json::from_str(saved) {
        *state = restored;
    }
}

/// One view of the centre of the window (a tab).
pub trait View: std::fmt::Debug {
    /// A stable name: the persisted tab and the key of the view's saved state.
    fn id(&self) -> &'static str;

    /// The tab's label.
    fn title(&self) -> &'static str;

    /// Draws the view for `cx.cursor`.
    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>);

    /// Reacts to a change of the document; most views need not.
    fn on_event(&mut self, event: ViewEvent) {
        let _ = event;
    }

    /// What the view remembers between sessions, as JSON; `None` if nothing.
    fn save_state(&self) -> Option<String> {
        None
    }

    /// Takes back what [`View::save_state`] gave; a state that no longer parses is ignored.
    fn load_state(&mut self, state: &str) {
        let _ = state;
    }
}
