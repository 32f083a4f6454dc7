//! Frame textures, uploaded once per (seed, step, view) and kept in a small LRU cache.

use std::collections::HashMap;

use egui::{TextureHandle, TextureOptions};

use super::document::Document;
use super::latent_rgb::{LatentVideo, RgbMapping};
use super::settings::StepView;

/// How many (seed, step, view) entries stay uploaded. 50 steps x 4 seeds of one view fit.
const CAPACITY: usize = 256;

/// What identifies one step's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameKey {
    pub seed_idx: usize,
    pub step_idx: usize,
    pub view: StepView,
}

/// One step's video: the values (for hover read-outs) and one texture per frame.
pub struct FrameStack {
    pub video: LatentVideo,
    pub mapping: RgbMapping,
    /// One per frame, in frame order, sampled nearest-neighbour.
    pub textures: Vec<TextureHandle>,
}

impl std::fmt::Debug for FrameStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStack")
            .field("shape", &self.video.shape)
            .field("mapping", &self.mapping)
            .field("textures", &self.textures.iter().map(TextureHandle::id).collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug)]
struct Entry {
    /// A read failure is kept too, so that a bad step is not re-read every frame.
    frames: Result<FrameStack, String>,
    last_used: u64,
}

/// Textures for the frames the views have shown recently. Cleared when another file opens.
#[derive(Debug, Default)]
pub struct FrameCache {
    entries: HashMap<FrameKey, Entry>,
    clock: u64,
}

impl FrameCache {
    /// Forgets every entry (and frees its textures).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many entries are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets the entries `stale` picks (a live run's step arrived or was rewound).
    pub fn forget(&mut self, stale: impl Fn(&FrameKey) -> bool) {
        self.entries.retain(|key, _| !stale(key));
    }

    /// The frames for `key`, read from `document` and uploaded through `ctx` on first use.
    pub fn get_or_load(
        &mut self,
        ctx: &egui::Context,
        document: &Document,
        key: FrameKey,
    ) -> Result<&FrameStack, &str> {
        self.clock += 1;
        if !self.entries.contains_key(&key) {
            self.evict_to(CAPACITY - 1);
        }
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            frames: document
                .load_video(key.seed_idx, key.step_idx, key.view)
                .map(|video| upload(ctx, key, video))
                .map_err(|err| format!("{err:#}")),
            last_used: 0,
        });
        entry.last_used = self.clock;
        entry.frames.as_ref().map_err(String::as_str)
    }

    /// Drops the least recently used entries until at most `len` remain.
    fn evict_to(&mut self, len: usize) {
        while self.entries.len() > len {
            let Some(oldest) =
                self.entries.iter().min_by_key(|(_, entry)| entry.last_used).map(|(key, _)| *key)
            else {
                return;
            };
            self.entries.remove(&oldest);
        }
    }
}

fn upload(ctx: &egui::Context, key: FrameKey, video: LatentVideo) -> FrameStack {
    let (images, mapping) = video.to_rgb_frames();
    let textures = images
        .into_iter()
        .enumerate()
        .map(|(frame_idx, image)| {
            let name = format!("s{}/k{}/{}/frame{frame_idx}", key.seed_idx, key.step_idx, key.view.label());
            ctx.load_texture(name, image, TextureOptions::NEAREST)
        })
        .collect();
    FrameStack { video, mapping, textures }
}
