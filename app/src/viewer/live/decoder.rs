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
    /// Starts `stepscope-vae`, which loads the VAE in `vae_dir` (f32, CPU) at its first job;
    /// `wake` is called after each decoded step.
    pub fn spawn(vae_dir: PathBuf, wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let (sender, done) = crossbeam_channel::bounded(4);
        let (thread_queue, thread_cancel) = (Arc::clone(&queue), Arc::clone(&cancel));
        std::thread::Builder::new()
            .name("stepscope-vae".to_owned())
            .spawn(move || decode_loop(&vae_dir, &thread_queue, &thread_cancel, &sender, &wake))?;
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
    vae_dir: &std::path::Path,
    queue: &Queue,
    cancel: &AtomicBool,
    done: &Sender<Decoded>,
    wake: &dyn Fn(),
) {
    let mut vae: Option<Result<WanVae, String>> = None;
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
        let vae = vae.get_or_insert_with(|| {
            WanVae::load(vae_dir, DType::F32, &Device::Cpu).map_err(|err| format!("loading the VAE: {err}"))
        });
        let video = match vae {
            Ok(vae) => match vae.decode_latents_unless(&job.x0, &|| cancel.load(Ordering::Relaxed)) {
                Ok(Some(video)) => Ok(video),
                Ok(None) => continue, // replaced by a newer request
                Err(err) => Err(format!("decoding step {}: {err}", job.step_idx)),
            },
            Err(message) => Err(message.clone()),
        };
        if done.send(Decoded { seed_idx: job.seed_idx, step_idx: job.step_idx, video }).is_err() {
            return;
        }
        wake();
    }
}
