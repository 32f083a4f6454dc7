//! Decoding a live run's steps to pixels on a thread of their own (`stepscope-vae`), so that
//! stepping never waits for the VAE: the window asks for the step the user looks at (or each new
//! step, when following), a newer request replaces a queued one and stops the decode in progress
//! between two latent frames, and the decoded video comes back to be stored in the live record
//! under the name the exporter uses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use candle_core::{DType, Device, Tensor};
use crossbeam_channel::{Receiver, Sender};
use stepscope_engine::vae::WanVae;

/// A step to decode: its `x0_hat` `[C, F, H, W]`.
#[derive(Debug, Clone)]
struct Job {
    seed_idx: usize,
    step_idx: usize,
    x0: Tensor,
}

/// A decoded step, or why it could not be.
#[derive(Debug)]
pub struct Decoded {
    pub seed_idx: usize,
    pub step_idx: usize,
    /// `[3, F_v, H_v, W_v]` in `[-1, 1]`.
    pub video: Result<Tensor, String>,
}

/// The slot the window puts the newest request in, and the thread takes it from.
#[derive(Debug, Default)]
struct Queue {
    job: Mutex<(Option<Job>, bool)>,
    ready: Condvar,
}

/// The decoding thread, and what the window knows of it.
#[derive(Debug)]
pub struct LiveDecoder {
    queue: Arc<Queue>,
    /// Set to stop the decode in progress (a newer request, or the window going away).
    cancel: Arc<AtomicBool>,
    done: Receiver<Decoded>,
    /// The step asked for last and not back yet.
    pending: Option<(usize, usize)>,
    /// Decode each new step of the shown seed as it arrives.
    pub follow: bool,
}

impl LiveDecoder {
    /// Starts `stepscope-vae`, which loads the VAE in `vae_dir` (f32, on the run's `device`) at
    /// its first job; videos come back on the CPU. `wake` is called after each decoded step.
    pub fn spawn(
        vae_dir: PathBuf,
        device: Device,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let mut vae: Option<Result<WanVae, String>> = None;
        let decode = move |x0: &Tensor, cancelled: &dyn Fn() -> bool| {
            let vae = vae.get_or_insert_with(|| {
                WanVae::load(&vae_dir, DType::F32, &device).map_err(|err| format!("loading the VAE: {err}"))
            });
            let vae = vae.as_ref().map_err(Clone::clone)?;
            let x0 = x0.to_device(&device).map_err(|err| err.to_string())?;
            let video = vae.decode_latents_unless(&x0, cancelled).map_err(|err| err.to_string())?;
            video.map(|video| video.to_device(&Device::Cpu)).transpose().map_err(|err| err.to_string())
        };
        Self::spawn_with(decode, wake)
    }

    /// [`Self::spawn`] with the decoding given: `decode(x0, cancelled)` gives the video, or
    /// `None` once `cancelled()` says so.
    pub fn spawn_with(
        decode: impl FnMut(&Tensor, &dyn Fn() -> bool) -> Result<Option<Tensor>, String> + Send + 'static,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let (sender, done) = crossbeam_channel::bounded(4);
        let (thread_queue, thread_cancel) = (Arc::clone(&queue), Arc::clone(&cancel));
        std::thread::Builder::new()
            .name("stepscope-vae".to_owned())
            .spawn(move || decode_loop(decode, &thread_queue, &thread_cancel, &sender, &wake))?;
        Ok(Self { queue, cancel, done, pending: None, follow: false })
    }

    /// Asks for step `step_idx` of seed `seed_idx`, whose `x0_hat` is `x0`: replaces a request
    /// still queued and stops the decode in progress.
    pub fn request(&mut self, seed_idx: usize, step_idx: usize, x0: Tensor) {
        let mut slot = self.queue.job.lock().unwrap_or_else(PoisonError::into_inner);
        slot.0 = Some(Job { seed_idx, step_idx, x0 });
        self.cancel.store(true, Ordering::Relaxed);
        self.pending = Some((seed_idx, step_idx));
        self.queue.ready.notify_one();
    }

    /// The decoded steps that came back since the last call.
    pub fn poll(&mut self) -> Vec<Decoded> {
        let decoded: Vec<Decoded> = self.done.try_iter().collect();
        if decoded.iter().any(|d| Some((d.seed_idx, d.step_idx)) == self.pending) {
            self.pending = None;
        }
        decoded
    }

    /// The step being decoded, if any.
    #[must_use]
    pub fn pending(&self) -> Option<(usize, usize)> {
        self.pending
    }
}

impl Drop for LiveDecoder {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let mut slot = self.queue.job.lock().unwrap_or_else(PoisonError::into_inner);
        slot.1 = true;
        self.queue.ready.notify_one();
    }
}

/// The thread: waits for the newest job, decodes it unless replaced, sends it back.
fn decode_loop(
    mut decode: impl FnMut(&Tensor, &dyn Fn() -> bool) -> Result<Option<Tensor>, String>,
    queue: &Queue,
    cancel: &AtomicBool,
    done: &Sender<Decoded>,
    wake: &dyn Fn(),
) {
    loop {
        let job = {
            let mut slot = queue.job.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if slot.1 {
                    return;
                }
                if let Some(job) = slot.0.take() {
                    cancel.store(false, Ordering::Relaxed);
                    break job;
                }
                slot = queue.ready.wait(slot).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let video = match decode(&job.x0, &|| cancel.load(Ordering::Relaxed)) {
            Ok(Some(video)) => Ok(video),
            Ok(None) => continue, // replaced by a newer request
            Err(message) => Err(format!("decoding step {}: {message}", job.step_idx)),
        };
        if done.send(Decoded { seed_idx: job.seed_idx, step_idx: job.step_idx, video }).is_err() {
            return;
        }
        wake();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A deliberately slow decoder: 20 "chunks" of 10 ms, checking for cancellation between
    /// them, giving back its input.
    fn slow(x0: &Tensor, cancelled: &dyn Fn() -> bool) -> Option<Tensor> {
        for _ in 0..20 {
            if cancelled() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(x0.clone())
    }

    fn latent(value: f32) -> Tensor {
        Tensor::full(value, (1, 1, 1, 1), &Device::Cpu).expect("a tensor")
    }

    #[test]
    fn a_newer_request_stops_the_decode_in_progress_and_only_its_step_comes_back() {
        let mut decoder = LiveDecoder::spawn_with(|x0, cancelled| Ok(slow(x0, cancelled)), || {})
            .expect("the thread starts");
        decoder.request(0, 1, latent(1.0));
        std::thread::sleep(Duration::from_millis(30)); // step 1 is being decoded
        // The thread holds the queue's lock only to take a job, never while decoding, so this
        // returns while step 1 is still being decoded.
        decoder.request(0, 2, latent(2.0));
        assert_eq!(decoder.pending(), Some((0, 2)));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut decoded = Vec::new();
        while decoded.is_empty() {
            assert!(Instant::now() < deadline, "nothing was decoded");
            decoded = decoder.poll();
            std::thread::sleep(Duration::from_millis(5));
        }
        // Only the newer step came back: the first decode was stopped, not finished.
        assert_eq!(decoded.len(), 1);
        assert_eq!((decoded[0].seed_idx, decoded[0].step_idx), (0, 2));
        let value =
            decoded[0].video.as_ref().map(|video| video.flatten_all().and_then(|v| v.to_vec1::<f32>()));
        assert_eq!(value.ok().and_then(Result::ok), Some(vec![2.0]));
        assert_eq!(decoder.pending(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert!(decoder.poll().is_empty(), "the stopped decode never arrives");
    }
}
