//! The views of the centre of the window, in tab order. A new view is a new file with a type
//! that implements [`View`], and one line here.

use super::chain_view::ChainView;
use super::frame_view::FramesView;
use super::layers_view::LayersView;
use super::runs_view::RunsView;
use super::seeds_view::SeedsView;
use super::view::View;

/// One of each view, in tab order; the first is shown when no tab was saved.
#[must_use]
#[rustfmt::skip] // One view per line, so that adding one is a one-line change.
pub fn registered_views() -> Vec<Box<dyn View>> {
    vec![
        Box::new(FramesView::default()),
        Box::new(ChainView::default()),
        Box::new(LayersView::default()),
        Box::new(SeedsView::default()),
        Box::new(RunsView::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_ids_are_unique_and_the_seeds_view_is_registered() {
        let views = registered_views();
        let ids: std::collections::BTreeSet<&str> = views.iter().map(|view| view.id()).collect();
        assert_eq!(ids.len(), views.len(), "two views share an id");
        assert!(ids.contains(super::super::seeds_view::SEEDS_VIEW_ID));
    }

    #[test]
    fn each_view_takes_back_the_state_it_saved() {
        for mut view in registered_views() {
            let Some(saved) = view.save_state() else { continue };
            view.load_state(&saved);
            assert_eq!(view.save_state().as_deref(), Some(saved.as_str()), "{}", view.id());
            // A state that no longer parses leaves the view as it was.
            view.load_state("{not json");
            assert_eq!(view.save_state().as_deref(), Some(saved.as_str()), "{}", view.id());
        }
    }
}
