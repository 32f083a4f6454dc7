//! The window's own file browser, for when no native file dialog can be shown: a folder's
//! entries (folders first, then the files the request wants), a location field to type or paste
//! a path into, a name field when saving, and one message for anything that goes wrong.

use std::path::{Path, PathBuf};

/// Entries listed at most; a larger folder says how many more there are.
const MAX_ENTRIES: usize = 2000;

/// What the chosen path is for, which decides what can be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowseFor {
    /// An existing file with one of these extensions (empty: any file).
    OpenFile { extensions: &'static [&'static str] },
    /// A folder.
    Folder,
    /// A new or existing file to write, named with this extension.
    SaveFile { extension: &'static str },
}

/// What the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowseOutcome {
    Chosen(PathBuf),
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// The browser's state while it is open.
#[derive(Debug)]
pub struct FileBrowser {
    title: String,
    browse_for: BrowseFor,
    dir: PathBuf,
    /// The location field, applied with Enter or "Go".
    location: String,
    /// The file name (saving) or the picked entry (opening).
    name: String,
    entries: Vec<Entry>,
    /// Entries past [`MAX_ENTRIES`].
    hidden: usize,
    message: Option<String>,
}

impl FileBrowser {
    /// A browser titled `title` for `browse_for`, showing `dir` (the working directory if it
    /// cannot be read), with `name` suggested when saving.
    #[must_use]
    pub fn new(title: &str, browse_for: BrowseFor, dir: &Path, name: &str) -> Self {
        let mut browser = Self {
            title: title.to_owned(),
            browse_for,
            dir: PathBuf::new(),
            location: String::new(),
            name: name.to_owned(),
            entries: Vec::new(),
            hidden: 0,
            message: None,
        };
        browser.enter(dir);
        browser
    }

    /// Shows `dir`'s entries; on failure stays where it was and says why.
    fn enter(&mut self, dir: &Path) {
        match list_dir(dir, self.browse_for) {
            Ok((entries, hidden)) => {
                dir.clone_into(&mut self.dir);
                self.location = dir.display().to_string();
                self.entries = entries;
                self.hidden = hidden;
                self.message = None;
            }
            Err(err) => self.message = Some(format!("Cannot list {}: {err}", dir.display())),
        }
    }

    /// What OK would choose now, or why nothing can be chosen.
    fn choice(&self) -> Result<PathBuf, String> {
        match self.browse_for {
            BrowseFor::Folder => Ok(self.dir.clone()),
            BrowseFor::OpenFile { .. } if self.name.is_empty() => Err("Pick a file.".to_owned()),
            BrowseFor::OpenFile { .. } => Ok(self.dir.join(&self.name)),
            BrowseFor::SaveFile { .. } if self.name.trim().is_empty() => Err("Type a file name.".to_owned()),
            BrowseFor::SaveFile { extension } => {
                let path = self.dir.join(self.name.trim());
                Ok(if path.extension().is_some() { path } else { path.with_extension(extension) })
            }
        }
    }

    /// Draws the browser window; returns what the user did, if anything yet.
    pub fn ui(&mut self, ctx: &egui::Context) -> Option<BrowseOutcome> {
        let mut outcome = None;
        let mut open = true;
        egui::Window::new(&self.title).open(&mut open).collapsible(false).default_size([520.0, 420.0]).show(
            ctx,
            |ui| {
                ui.label(
                    "No system file dialog answered (no xdg-desktop-portal or zenity here), so choose here.",
                );
                self.location_ui(ui);
                if let Some(message) = &self.message {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                ui.separator();
                self.entries_ui(ui);
                ui.separator();
                outcome = self.buttons_ui(ui);
            },
        );
        if !open {
            outcome = Some(BrowseOutcome::Cancelled);
        }
        outcome
    }

    fn location_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui.button("⬆ Up").on_hover_text("The folder above").clicked()
                && let Some(parent) = self.dir.parent().map(Path::to_owned)
            {
                self.enter(&parent);
            }
            let label = ui.label("Location");
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.location).desired_width(300.0))
                .labelled_by(label.id);
            let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            if entered || ui.button("Go").clicked() {
                self.go_to_location();
            }
        });
    }

    /// A typed folder is entered; a typed file is picked in its folder.
    fn go_to_location(&mut self) {
        let path = PathBuf::from(self.location.trim());
        if path.is_dir() {
            self.enter(&path);
        } else if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            self.enter(parent);
            if self.message.is_none() {
                self.name = name.to_string_lossy().into_owned();
            }
        } else {
            self.message = Some(format!("{} is not a folder", path.display()));
        }
    }

    fn entries_ui(&mut self, ui: &mut egui::Ui) {
        let mut enter = None;
        egui::ScrollArea::vertical().max_height(260.0).auto_shrink([false, true]).show(ui, |ui| {
            for entry in &self.entries {
                let text = if entry.is_dir { format!("📁 {}", entry.name) } else { entry.name.clone() };
                let selected = !entry.is_dir && entry.name == self.name;
                let response = ui.selectable_label(selected, text);
                if entry.is_dir && response.clicked() {
                    enter = Some(self.dir.join(&entry.name));
                } else if response.clicked() {
                    self.name.clone_from(&entry.name);
                }
            }
            if self.entries.is_empty() {
                ui.weak("(nothing to choose here)");
            }
            if self.hidden > 0 {
                ui.weak(format!("… and {} more entries (type a path above)", self.hidden));
            }
        });
        if let Some(dir) = enter {
            self.enter(&dir);
        }
    }

    fn buttons_ui(&mut self, ui: &mut egui::Ui) -> Option<BrowseOutcome> {
        let mut outcome = None;
        ui.horizontal(|ui| {
            if let BrowseFor::SaveFile { .. } = self.browse_for {
                let label = ui.label("File name");
                ui.add(egui::TextEdit::singleline(&mut self.name).desired_width(240.0)).labelled_by(label.id);
            }
            let ok_label = match self.browse_for {
                BrowseFor::OpenFile { .. } => "Open",
                BrowseFor::Folder => "Choose this folder",
                BrowseFor::SaveFile { .. } => "Save",
            };
            if ui.button(ok_label).clicked() {
                match self.choice() {
                    Ok(path) => outcome = Some(BrowseOutcome::Chosen(path)),
                    Err(message) => self.message = Some(message),
                }
            }
            if ui.button("Cancel").clicked() {
                outcome = Some(BrowseOutcome::Cancelled);
            }
        });
        outcome
    }
}

/// `dir`'s folders, then the files `browse_for` can use, each sorted by name; at most
/// [`MAX_ENTRIES`], with the count of the rest. Hidden entries (a leading dot) are left out.
fn list_dir(dir: &Path, browse_for: BrowseFor) -> std::io::Result<(Vec<Entry>, usize)> {
    let mut entries = Vec::new();
    let mut hidden = 0;
    for item in std::fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let is_dir = item.path().is_dir();
        let wanted = is_dir
            || match browse_for {
                BrowseFor::Folder => false,
                BrowseFor::OpenFile { extensions } => {
                    extensions.is_empty() || extensions.iter().any(|ext| name.ends_with(&format!(".{ext}")))
                }
                BrowseFor::SaveFile { .. } => true,
            };
        if !wanted {
            continue;
        }
        if entries.len() < MAX_ENTRIES {
            entries.push(Entry { name, is_dir });
        } else {
            hidden += 1;
        }
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok((entries, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_come_first_and_only_wanted_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("runs")).unwrap();
        for name in ["b.safetensors", "a.safetensors", "notes.txt", ".hidden.safetensors"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let open = BrowseFor::OpenFile { extensions: &["safetensors"] };
        let (entries, hidden) = list_dir(dir.path(), open).unwrap();
        let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!((names, hidden), (vec!["runs", "a.safetensors", "b.safetensors"], 0));
        let (folders, _) = list_dir(dir.path(), BrowseFor::Folder).unwrap();
        assert_eq!(folders.len(), 1);
    }

    #[test]
    fn saving_adds_the_extension_and_needs_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut browser =
            FileBrowser::new("Save", BrowseFor::SaveFile { extension: "png" }, dir.path(), "view");
        assert_eq!(browser.choice(), Ok(dir.path().join("view.png")));
        browser.name = "  ".to_owned();
        assert!(browser.choice().is_err());
    }

    #[test]
    fn an_unreadable_folder_is_named_and_the_browser_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut browser = FileBrowser::new("Open", BrowseFor::Folder, dir.path(), "");
        browser.enter(&dir.path().join("missing"));
        assert_eq!(browser.dir, dir.path());
        assert!(
            browser.message.as_deref().is_some_and(|message| message.contains("missing")),
            "{:?}",
            browser.message
        );
    }
}
