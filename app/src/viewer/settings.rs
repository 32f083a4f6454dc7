//! What the viewer remembers between sessions (eframe storage), apart from any GPU resource.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::gpu::Colormap;
use super::live::LiveSetup;
use super::step_view::StepView;

/// How many recently opened files File > Open Recent lists.
pub const MAX_RECENT_FILES: usize = 10;

/// The viewer's persisted choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewerSettings {
    pub view: StepView,
    /// Playback speed, steps per second.
    pub fps: f32,
    /// Whether playback wraps from the last step to the first.
    pub looping: bool,
    /// Whether the side panel is shown.
    pub show_side_panel: bool,
    /// Most recent first, without repeats.
    pub recent_files: Vec<PathBuf>,
    /// The last live run's choices, the next "New live run" starts from.
    pub live_setup: LiveSetup,
    /// The id of the view shown in the centre (see `views::registered_views`; the first one on
    /// screen when the centre is split), which a version without `layout` saved. Read leniently:
    /// an older version stored an enum here (`Frames`, `Layers`, `Seeds`, whose lowercase names
    /// are the view ids), and one unreadable field must not lose the rest.
    #[serde(deserialize_with = "view_id_or_default")]
    pub central_tab: String,
    /// The colormap of every scalar picture (layers, seeds, probes, attention).
    pub colormap: Colormap,
    /// Each view's own saved state (JSON), by view id.
    pub view_states: BTreeMap<String, String>,
    /// The layout of the views (tiles, as JSON; see `dock::Dock`), absent before the first save.
    pub layout: Option<String>,
}

impl Default for ViewerSettings {
    fn default() -> Self {
        Self {
            view: StepView::default(),
            fps: 8.0,
            looping: true,
            show_side_panel: true,
            recent_files: Vec::new(),
            live_setup: LiveSetup::builtin_maze(),
            central_tab: String::new(),
            colormap: Colormap::default(),
            view_states: BTreeMap::new(),
            layout: None,
        }
    }
}

/// A view id: a string (or an older version's enum variant name) in lowercase, or the empty
/// string for any other value, so that a field whose type changed between versions reads as its
/// default instead of failing the whole settings.
fn view_id_or_default<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrOther {
        String(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match StringOrOther::deserialize(deserializer)? {
        StringOrOther::String(text) => text.to_lowercase(),
        StringOrOther::Other(_) => String::new(),
    })
}

impl ViewerSettings {
    /// Puts `path` first in the recent files, dropping an older entry for it and the oldest
    /// beyond [`MAX_RECENT_FILES`].
    pub fn remember_file(&mut self, path: &Path) {
        self.recent_files.retain(|recent| recent != path);
        self.recent_files.insert(0, path.to_owned());
        self.recent_files.truncate(MAX_RECENT_FILES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use eframe::Storage as _;

    /// An in-memory eframe storage.
    #[derive(Default)]
    struct MemoryStorage(std::collections::HashMap<String, String>);

    impl eframe::Storage for MemoryStorage {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }

        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }

        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }

        fn flush(&mut self) {}
    }

    #[test]
    fn settings_of_the_previous_version_keep_what_still_applies() {
        // Saved by the version before the view trait: the tab was an enum, the zoom and the
        // layers' choices were fields of their own.
        let old = r#"(view: Latents, fps: 4.0, looping: false, zoom: 12.0, show_side_panel: true,
            recent_files: ["/data/run.safetensors"], central_tab: Seeds,
            layers: (picture: TokenNorm, heatmap: X0Change, colormap: Magma))"#;
        let mut storage = MemoryStorage::default();
        storage.set_string(eframe::APP_KEY, old.to_owned());
        let settings: ViewerSettings = eframe::get_value(&storage, eframe::APP_KEY).expect("still readable");
        assert_eq!(settings.view, StepView::Latents);
        assert_eq!(settings.recent_files, [PathBuf::from("/data/run.safetensors")]);
        assert!((settings.fps - 4.0).abs() < f32::EPSILON && !settings.looping);
        assert_eq!(settings.central_tab, "seeds", "the old tab names its view");
        // And the new form round-trips.
        let new = ViewerSettings { central_tab: "chain".to_owned(), ..ViewerSettings::default() };
        eframe::set_value(&mut storage, eframe::APP_KEY, &new);
        let read: ViewerSettings = eframe::get_value(&storage, eframe::APP_KEY).expect("readable");
        assert_eq!(read.central_tab, "chain");
    }

    #[test]
    fn recent_files_are_most_recent_first_without_repeats() {
        let mut settings = ViewerSettings::default();
        for name in ["a", "b", "a"] {
            settings.remember_file(Path::new(name));
        }
        assert_eq!(settings.recent_files, [PathBuf::from("a"), PathBuf::from("b")]);
        for i in 0..20 {
            settings.remember_file(Path::new(&format!("f{i}")));
        }
        assert_eq!(settings.recent_files.len(), MAX_RECENT_FILES);
        assert_eq!(settings.recent_files[0], PathBuf::from("f19"));
    }
}
