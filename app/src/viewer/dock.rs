//! The centre of the window as tiles the user splits and rearranges (`egui_tiles`, as rerun
//! lays out its views): each registered [`View`] is one pane, shown once; drag a tab to the
//! side of another view to see both at once, onto a tab bar to stack them. The layout persists
//! (as JSON in the settings); a layout saved by another version keeps what still applies, gains
//! the views it lacked and drops the ones no longer registered.

use egui_tiles::{Behavior, SimplificationOptions, Tile, TileId, Tree, UiResponse};
use serde::{Deserialize, Serialize};

use super::view::{View, ViewContext};

/// A pane of the layout: the view it shows, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewPane {
    pub view_id: String,
}

/// The layout of the views in the centre.
#[derive(Debug, Clone)]
pub struct Dock {
    tree: Tree<ViewPane>,
}

/// The id of the layout's tree (stable, so that a restored layout keeps its egui state).
const TREE_ID: &str = "stepscope_views";

impl Dock {
    /// Every view as a tab, in registration order, the first one shown.
    #[must_use]
    pub fn tabs_of(views: &[Box<dyn View>]) -> Self {
        let panes = views.iter().map(|view| ViewPane { view_id: view.id().to_owned() }).collect();
        Self { tree: Tree::new_tabs(egui::Id::unique(TREE_ID), panes) }
    }

    /// The layout saved by [`Dock::to_saved`], fitted to `views`: panes of views no longer
    /// registered are dropped, views the layout lacks join its root as tabs. A layout that does
    /// not parse (or holds no view) gives [`Dock::tabs_of`].
    #[must_use]
    pub fn restore(saved: Option<&str>, views: &[Box<dyn View>]) -> Self {
        let Some(mut tree) = saved.and_then(|json| serde_json::from_str::<Tree<ViewPane>>(json).ok()) else {
            return Self::tabs_of(views);
        };
        let registered = |id: &str| views.iter().any(|view| view.id() == id);
        let unknown: Vec<TileId> = tree
            .tiles
            .iter()
            .filter(|(_, tile)| matches!(tile, Tile::Pane(pane) if !registered(&pane.view_id)))
            .map(|(&tile_id, _)| tile_id)
            .collect();
        for tile_id in unknown {
            tree.remove_recursively(tile_id);
        }
        let mut dock = Self { tree };
        if !dock.tree.tiles.tiles().any(|tile| matches!(tile, Tile::Pane(_))) {
            return Self::tabs_of(views);
        }
        for view in views {
            dock.add_if_missing(view.id());
        }
        dock
    }

    /// The layout as JSON, for the settings.
    #[must_use]
    pub fn to_saved(&self) -> Option<String> {
        serde_json::to_string(&self.tree).ok()
    }

    /// Adds a pane for `view_id` as a tab of the root (or as the root's new sibling when the
    /// root is not a tab container) unless the layout has one.
    fn add_if_missing(&mut self, view_id: &str) {
        if self.pane_tile(view_id).is_some() {
            return;
        }
        let pane = self.tree.tiles.insert_pane(ViewPane { view_id: view_id.to_owned() });
        match self.tree.root.and_then(|root| self.tree.tiles.get_mut(root)) {
            Some(Tile::Container(container)) => container.add_child(pane),
            Some(Tile::Pane(_)) => {
                let old_root = self.tree.root.unwrap_or(pane);
                self.tree.root = Some(self.tree.tiles.insert_tab_tile(vec![old_root, pane]));
            }
            None => self.tree.root = Some(pane),
        }
    }

    fn pane_tile(&self, view_id: &str) -> Option<TileId> {
        self.tree.tiles.find_pane(&ViewPane { view_id: view_id.to_owned() })
    }

    /// Makes the view `view_id` visible: the active tab of every tab container above it.
    pub fn show(&mut self, view_id: &str) {
        self.tree.make_active(|_, tile| matches!(tile, Tile::Pane(pane) if pane.view_id == view_id));
    }

    /// The ids of the views on screen (the active tab of each tab container), in the order
    /// the layout nests them (left to right, top to bottom).
    #[must_use]
    pub fn shown_ids(&self) -> Vec<String> {
        self.tree
            .active_tiles()
            .into_iter()
            .filter_map(|tile_id| self.tree.tiles.get_pane(&tile_id).map(|pane| pane.view_id.clone()))
            .collect()
    }

    /// Splits the centre into the views `view_ids` side by side (left to right), the other
    /// views stacked as tabs behind the last one.
    #[cfg(test)]
    pub fn side_by_side(&mut self, view_ids: &[&str], views: &[Box<dyn View>]) {
        let mut tiles = egui_tiles::Tiles::default();
        let mut columns: Vec<TileId> =
            view_ids.iter().map(|&id| tiles.insert_pane(ViewPane { view_id: id.to_owned() })).collect();
        let rest: Vec<TileId> = views
            .iter()
            .filter(|view| !view_ids.contains(&view.id()))
            .map(|view| tiles.insert_pane(ViewPane { view_id: view.id().to_owned() }))
            .collect();
        if let Some(last) = columns.pop() {
            let mut stacked = vec![last];
            stacked.extend(rest);
            columns.push(tiles.insert_tab_tile(stacked));
        }
        let root = tiles.insert_horizontal_tile(columns);
        self.tree = Tree::new(egui::Id::unique(TREE_ID), root, tiles);
        for id in view_ids {
            self.show(id);
        }
    }

    /// Draws the views in their tiles over the space left in `ui`.
    pub fn ui(&mut self, ui: &mut egui::Ui, views: &mut [Box<dyn View>], cx: &mut ViewContext<'_>) {
        let mut behavior = DockBehavior { views, cx };
        self.tree.ui(&mut behavior, ui);
    }
}

/// How the tiles draw: each pane is its view.
struct DockBehavior<'a, 'cx> {
    views: &'a mut [Box<dyn View>],
    cx: &'a mut ViewContext<'cx>,
}

impl DockBehavior<'_, '_> {
    fn view_mut(&mut self, view_id: &str) -> Option<&mut Box<dyn View>> {
        self.views.iter_mut().find(|view| view.id() == view_id)
    }
}

/// Space between a tile's edge and its view.
const PANE_MARGIN: i8 = 4;

impl Behavior<ViewPane> for DockBehavior<'_, '_> {
    fn pane_ui(&mut self, ui: &mut egui::Ui, _tile_id: TileId, pane: &mut ViewPane) -> UiResponse {
        let cx = &mut *self.cx;
        if let Some(view) = self.views.iter_mut().find(|view| view.id() == pane.view_id) {
            egui::Frame::new().inner_margin(PANE_MARGIN).show(ui, |ui| {
                ui.set_min_size(ui.available_size());
                view.ui(ui, cx);
            });
        }
        UiResponse::None
    }

    fn tab_title_for_pane(&mut self, pane: &ViewPane) -> egui::WidgetText {
        self.view_mut(&pane.view_id)
            .map_or_else(|| pane.view_id.clone(), |view| view.title().to_owned())
            .into()
    }

    /// A group of views stacked as one tab is named by its views ("Frames | Layers").
    fn tab_title_for_tile(
        &mut self,
        tiles: &egui_tiles::Tiles<ViewPane>,
        tile_id: TileId,
    ) -> egui::WidgetText {
        let mut titles = Vec::new();
        let mut stack = vec![tile_id];
        while let Some(id) = stack.pop() {
            match tiles.get(id) {
                Some(Tile::Pane(pane)) => titles.push(self.tab_title_for_pane(pane).text().to_owned()),
                Some(Tile::Container(container)) => stack.extend(container.children_vec().into_iter().rev()),
                None => {}
            }
        }
        titles.join(" | ").into()
    }

    fn retain_pane(&mut self, pane: &ViewPane) -> bool {
        self.view_mut(&pane.view_id).is_some()
    }

    fn simplification_options(&self) -> SimplificationOptions {
        // Every view keeps its tab, so that it can be dragged elsewhere even when alone.
        SimplificationOptions { all_panes_must_have_tabs: true, ..SimplificationOptions::default() }
    }

    fn gap_width(&self, _style: &egui::Style) -> f32 {
        4.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::views::registered_views;
    use super::*;

    #[test]
    fn a_saved_layout_comes_back_with_the_same_views_shown() {
        let views = registered_views();
        let ids: Vec<&str> = views.iter().map(|view| view.id()).collect();
        let mut dock = Dock::tabs_of(&views);
        assert_eq!(dock.shown_ids(), [ids[0]], "tabs show the first view");
        dock.side_by_side(&[ids[0], ids[2]], &views);
        assert_eq!(dock.shown_ids(), [ids[0], ids[2]]);
        let restored = Dock::restore(dock.to_saved().as_deref(), &views);
        assert_eq!(restored.shown_ids(), [ids[0], ids[2]]);
        for id in &ids {
            assert!(restored.pane_tile(id).is_some(), "{id} lost its pane");
        }
    }

    #[test]
    fn a_layout_of_another_version_gains_new_views_and_drops_unknown_ones() {
        let views = registered_views();
        let first = views[0].id();
        let old = Tree::new_tabs(
            egui::Id::unique(TREE_ID),
            vec![
                ViewPane { view_id: "a_view_since_removed".to_owned() },
                ViewPane { view_id: first.to_owned() },
            ],
        );
        let saved = serde_json::to_string(&old).ok();
        let restored = Dock::restore(saved.as_deref(), &views);
        assert!(restored.pane_tile("a_view_since_removed").is_none());
        for view in &views {
            assert!(restored.pane_tile(view.id()).is_some(), "{} was not added", view.id());
        }
        // Unreadable or empty layouts give the default tabs.
        for saved in ["{not json", "null"] {
            assert_eq!(Dock::restore(Some(saved), &views).shown_ids(), [first]);
        }
    }

    #[test]
    fn showing_a_view_makes_its_tab_active() {
        let views = registered_views();
        let mut dock = Dock::tabs_of(&views);
        let last = views.last().map(|view| view.id()).unwrap_or_default();
        dock.show(last);
        assert_eq!(dock.shown_ids(), [last]);
    }
}
