//! Pictures written in the background: contact sheets and GIFs drawn from loaded tensors, and
//! pictures of what the window shows (the central view, the whole window, the probe window) cut
//! from a screenshot. Each is encoded and written on its own named thread, so that a figure is
//! one click and the window never waits for an encoder.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use crossbeam_channel::{Receiver, Sender, bounded};
use egui::{ColorImage, Rect};
use image::RgbaImage;

use super::export::write_png;

/// Outcomes that can wait in the channel for the window to read them.
const OUTCOME_QUEUE: usize = 16;

/// Picture jobs in flight and the outcomes that came back, one line each.
#[derive(Debug)]
pub struct PictureJobs {
    done_tx: Sender<String>,
    done_rx: Receiver<String>,
    /// Jobs started whose outcome has not been read yet.
    in_flight: usize,
}

impl Default for PictureJobs {
    fn default() -> Self {
        let (done_tx, done_rx) = bounded(OUTCOME_QUEUE);
        Self { done_tx, done_rx, in_flight: 0 }
    }
}

impl PictureJobs {
    /// Runs `job` (which writes a file and says how that went, in one line) on a worker thread.
    pub fn spawn(&mut self, ctx: &egui::Context, job: impl FnOnce() -> String + Send + 'static) {
        self.in_flight += 1;
        start_job(self.done_tx.clone(), ctx.clone(), job);
    }

    /// Whether a job is still running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }

    /// Asks for a screenshot of the window at the end of this frame; the part inside `region`
    /// (points) is written to `path` as PNG. The outcome comes back through [`Self::poll`].
    pub fn capture(&mut self, ctx: &egui::Context, region: Rect, path: PathBuf) {
        self.in_flight += 1;
        let done = self.done_tx.clone();
        let pixels_per_point = ctx.pixels_per_point();
        let repaint = ctx.clone();
        let callback = egui::ScreenshotCallback::new(move |image: Arc<ColorImage>| {
            // This runs where the frame is painted: encoding and writing go to their own thread.
            start_job(done, repaint, move || {
                let outcome =
                    crop(&image, region, pixels_per_point).and_then(|picture| write_png(&path, &picture));
                match outcome {
                    Ok(()) => format!("Saved {}", path.display()),
                    Err(err) => format!("Saving {} failed: {err:#}", path.display()),
                }
            });
        });
        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
    }

    /// The outcome of a finished job, if one came back since the last call.
    pub fn poll(&mut self) -> Option<String> {
        let line = self.done_rx.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(line)
    }
}

/// Runs `job` on a named thread; its outcome line goes to `done`, and the window repaints to
/// show it. If the thread cannot start, that is the outcome.
fn start_job(done: Sender<String>, repaint: egui::Context, job: impl FnOnce() -> String + Send + 'static) {
    let failed = done.clone();
    let run = move || {
        // A full queue means the window stopped reading; the file is written either way.
        let _ = done.try_send(job());
        repaint.request_repaint();
    };
    if let Err(err) = std::thread::Builder::new().name("stepscope-picture".to_owned()).spawn(run) {
        let _ = failed.try_send(format!("Could not start the picture writer: {err}"));
    }
}

/// The pixels of `image` (the whole window, physical pixels) inside `region` (points), clipped
/// to the window; an error if nothing of it is on screen.
pub fn crop(image: &ColorImage, region: Rect, pixels_per_point: f32) -> Result<RgbaImage> {
    let [width, height] = image.size;
    let to_pixels =
        |value: f32, limit: usize| ((value * pixels_per_point).round().max(0.0) as usize).min(limit);
    let (x0, x1) = (to_pixels(region.min.x, width), to_pixels(region.max.x, width));
    let (y0, y1) = (to_pixels(region.min.y, height), to_pixels(region.max.y, height));
    ensure!(x1 > x0 && y1 > y0, "the region {region:?} is not on screen");
    let mut picture = RgbaImage::new((x1 - x0) as u32, (y1 - y0) as u32);
    for (y, row) in (y0..y1).enumerate() {
        let pixels =
            image.pixels.get(row * width + x0..row * width + x1).context("the screenshot is too small")?;
        for (x, colour) in pixels.iter().enumerate() {
            picture.put_pixel(x as u32, y as u32, image::Rgba(colour.to_srgba_unmultiplied()));
        }
    }
    Ok(picture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::{Color32, pos2};

    #[test]
    fn the_region_is_cut_in_physical_pixels_and_clipped_to_the_window() {
        let mut image = ColorImage::filled([8, 6], Color32::BLACK);
        image.pixels[2 * 8 + 4] = Color32::RED; // x 4, y 2
        // Points (2, 1)..(3, 2) at 2 pixels per point: pixels (4, 2)..(6, 4).
        let picture = crop(&image, Rect::from_min_max(pos2(2.0, 1.0), pos2(3.0, 2.0)), 2.0).unwrap();
        assert_eq!(picture.dimensions(), (2, 2));
        assert_eq!(picture.get_pixel(0, 0).0, [255, 0, 0, 255]);
        assert_eq!(picture.get_pixel(1, 1).0, [0, 0, 0, 255]);
        // Half off screen: clipped.
        let clipped = crop(&image, Rect::from_min_max(pos2(3.0, 2.0), pos2(10.0, 10.0)), 2.0).unwrap();
        assert_eq!(clipped.dimensions(), (2, 2));
        // Wholly off screen: an error, not a panic.
        assert!(crop(&image, Rect::from_min_max(pos2(20.0, 20.0), pos2(30.0, 30.0)), 1.0).is_err());
    }
}
