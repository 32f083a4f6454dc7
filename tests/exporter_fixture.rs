//! The Python exporter and the Rust engine agree on trajectory files, so the two languages cannot
//! drift apart.
//!
//! `tests/fixtures/exporter/tiny_wan_t2v.safetensors` was written by `stepscope_export`
//! (`engine/python`) from a tiny random diffusers `WanPipeline` run (UniPC, 4 steps, guidance 3,
//! Stepscope seeds 42 and 7, every capture kind at two layers, seed 0's step-3 `x0` decoded by
//! the pipeline's tiny random VAE), and
//! `tests/fixtures/exporter/expected.json` holds numbers computed from it in Python; both come from
//! `tests/fixtures/exporter/make_fixture.py`. This test opens the file with the engine's own reader
//! and checks that:
//!
//! - the manifest parses and says what the Python side says (shapes, schedule, seeds, captures);
//! - the stored values are the ones Python computed, within [`TOLERANCE`];
//! - `x0 = x_t - sigma * v` at every step with the manifest's sigmas;
//! - the decoded video (seed 0's `x0` at step 3 through the tiny VAE, stored as f16) is where the
//!   manifest says, with the values Python computed;
//! - the manifest's schedule is the engine's own for the same scheduler, steps and shift, and each
//!   seed's first latents are the engine's seeded noise for its `rng_seed`, bit for bit.

use anyhow::{Context, Result, ensure};
use candle_core::{Device, Tensor};
use serde_json::Value;
use stepscope_engine::scheduler::{Schedule, SchedulerKind};
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::trajectory::{CaptureKind, NoiseSource, StepTensor, TensorName, TrajectoryReader};
use stepscope_tests::{fixture, max_abs_diff};

/// Largest absolute difference allowed between a value read here and the one Python computed
/// (the same f32 bits on both sides; sums are formed in f64 on both sides).
const TOLERANCE: f64 = 1e-6;

/// Largest absolute difference allowed between a stored `x0` and `x_t - sigma * v` recomputed
/// here in f32 (the exporter computes it in f32 too).
const X0_TOLERANCE: f32 = 1e-6;

fn open() -> Result<(TrajectoryReader, Value)> {
    let reader = TrajectoryReader::open(fixture("exporter/tiny_wan_t2v.safetensors"))
        .context("the exporter fixture opens with the engine's reader")?;
    let path = fixture("exporter/expected.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let expected = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok((reader, expected))
}

/// `value[key]`, failing with the key's name when absent.
fn get<'a>(value: &'a Value, key: &str) -> Result<&'a Value> {
    value.get(key).with_context(|| format!("expected.json: no `{key}`"))
}

fn number(value: &Value, key: &str) -> Result<f64> {
    get(value, key)?.as_f64().with_context(|| format!("expected.json: `{key}` is not a number"))
}

fn count(value: &Value, key: &str) -> Result<usize> {
    let n = get(value, key)?.as_u64().with_context(|| format!("expected.json: `{key}` is not a count"))?;
    Ok(usize::try_from(n)?)
}

fn numbers(value: &Value) -> Result<Vec<f64>> {
    value
        .as_array()
        .context("expected.json: expected an array")?
        .iter()
        .map(|item| item.as_f64().context("expected.json: expected a number"))
        .collect()
}

fn indices(value: &Value, key: &str) -> Result<Vec<usize>> {
    numbers(get(value, key)?)?
        .into_iter()
        .map(|n| {
            ensure!(n >= 0.0 && n.fract() == 0.0, "expected.json: `{key}` holds {n}, not an index");
            Ok(n as usize)
        })
        .collect()
}

fn values(tensor: &Tensor) -> Result<Vec<f32>> {
    Ok(tensor.flatten_all()?.to_vec1::<f32>()?)
}

fn close(got: f64, want: f64, what: &str) -> Result<()> {
    ensure!((got - want).abs() <= TOLERANCE, "{what}: read {got}, Python computed {want}");
    Ok(())
}

#[test]
fn the_manifest_says_what_the_python_side_says() -> Result<()> {
    let (reader, expected) = open()?;
    let manifest = reader.manifest();
    ensure!(manifest.format_version == 1, "format version {}", manifest.format_version);
    let created_by = get(&expected, "created_by")?.as_str().context("`created_by` is a string")?;
    assert_eq!(manifest.created_by, created_by);
    assert!(manifest.created_by.starts_with("stepscope_export "), "{}", manifest.created_by);
    assert_eq!(manifest.latent_shape.to_vec(), indices(&expected, "latent_shape")?);
    assert_eq!(manifest.patch_size.to_vec(), indices(&expected, "patch_size")?);
    assert_eq!(manifest.token_grid().to_vec(), indices(&expected, "token_grid")?);
    assert_eq!(manifest.model.config.get("num_layers").and_then(Value::as_u64), Some(2));

    let schedule = &manifest.schedule;
    assert_eq!(schedule.scheduler, SchedulerKind::UniPc);
    assert_eq!(schedule.steps, count(&expected, "steps")?);
    assert_eq!(schedule.sigmas, numbers(get(&expected, "sigmas")?)?);
    assert_eq!(schedule.timesteps, numbers(get(&expected, "timesteps")?)?);
    close(schedule.shift, number(&expected, "shift")?, "shift")?;

    let conditioning = &manifest.conditioning;
    close(conditioning.guidance_scale, number(&expected, "guidance_scale")?, "guidance scale")?;
    assert!(conditioning.negative_prompt, "guidance 3 uses the negative prompt");
    assert!(!conditioning.condition_frame, "text-to-video has no condition frame");
    assert!(conditioning.task.is_none());

    let rng_seeds = indices(&expected, "rng_seeds")?;
    let capture_steps = indices(&expected, "capture_steps")?;
    assert_eq!(manifest.seeds.len(), rng_seeds.len());
    for (seed, &rng_seed) in manifest.seeds.iter().zip(&rng_seeds) {
        assert_eq!(seed.noise, NoiseSource::RngSeed(rng_seed as u64));
        assert_eq!(seed.forked_from, None);
        assert_eq!(seed.intervention, None);
        assert_eq!(seed.steps, (0..schedule.steps).collect::<Vec<_>>());
        assert_eq!(seed.capture_steps, capture_steps);
        assert!(seed.final_latents);
    }
    assert_eq!(manifest.step_tensors, StepTensor::ALL.to_vec());

    let captures = &manifest.captures;
    assert_eq!(captures.layers, indices(&expected, "layers")?);
    assert_eq!(captures.query_tokens, indices(&expected, "query_tokens")?);
    let kinds: Vec<&str> = captures.kinds.iter().map(|kind| kind.as_str()).collect();
    let expected_kinds: Vec<&str> = get(&expected, "kinds")?
        .as_array()
        .context("`kinds` is an array")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(kinds, expected_kinds);
    assert_eq!(reader.tensor_names().len(), count(&expected, "tensor_count")?);
    Ok(())
}

#[test]
fn the_stored_values_are_the_ones_python_computed() -> Result<()> {
    let (reader, expected) = open()?;
    let probes = indices(&expected, "probe_indices")?;
    let seeds = get(&expected, "seeds")?.as_array().context("`seeds` is an array")?;
    ensure!(seeds.len() == reader.manifest().seeds.len(), "expected.json lists {} seeds", seeds.len());
    for (seed_idx, seed) in seeds.iter().enumerate() {
        let final_values = values(&reader.final_latents(seed_idx)?)?;
        let summary = get(seed, "final")?;
        let sum: f64 = final_values.iter().copied().map(f64::from).sum();
        let abs_max = final_values.iter().fold(0.0_f64, |acc, &value| acc.max(f64::from(value).abs()));
        close(sum, number(summary, "sum")?, &format!("s{seed_idx}/final/latents sum"))?;
        close(sum / final_values.len() as f64, number(summary, "mean")?, &format!("s{seed_idx} final mean"))?;
        close(abs_max, number(summary, "abs_max")?, &format!("s{seed_idx} final largest magnitude"))?;
        for (&index, want) in probes.iter().zip(numbers(get(seed, "final_values")?)?) {
            close(f64::from(final_values[index]), want, &format!("s{seed_idx}/final/latents[{index}]"))?;
        }
        for kind in StepTensor::ALL {
            let per_step = get(seed, &format!("{kind}_values"))?.as_array().context("per-step values")?;
            ensure!(per_step.len() == reader.manifest().schedule.steps, "{kind}: one row per step");
            for (step_idx, row) in per_step.iter().enumerate() {
                let stored = values(&reader.load(&TensorName::Step { seed_idx, step_idx, kind })?)?;
                for (&index, want) in probes.iter().zip(numbers(row)?) {
                    close(
                        f64::from(stored[index]),
                        want,
                        &format!("s{seed_idx}/k{step_idx}/{kind}[{index}]"),
                    )?;
                }
            }
        }
    }
    for capture in get(&expected, "captures")?.as_array().context("`captures` is an array")? {
        let name = get(capture, "name")?.as_str().context("a capture name")?;
        let tensor = reader.tensor(name)?;
        assert_eq!(tensor.dims().to_vec(), indices(capture, "shape")?, "{name}");
        let stored = values(&tensor)?;
        for (index, want) in numbers(get(capture, "first_values")?)?.into_iter().enumerate() {
            close(f64::from(stored[index]), want, &format!("{name}[{index}]"))?;
        }
        let sum: f64 = stored.iter().copied().map(f64::from).sum();
        close(sum, number(capture, "sum")?, &format!("{name} sum"))?;
    }
    Ok(())
}

#[test]
fn the_decoded_video_is_where_the_manifest_says_with_pythons_values() -> Result<()> {
    let (reader, expected) = open()?;
    let manifest = reader.manifest();
    let video = manifest.video.as_ref().context("the fixture stores a decoded video")?;
    let want = get(&expected, "video")?;
    assert_eq!(video.shape.to_vec(), indices(want, "shape")?);
    assert_eq!(Some(video.decoder.as_str()), get(want, "decoder")?.as_str());
    let per_seed = get(&expected, "video_steps")?.as_array().context("`video_steps` is an array")?;
    ensure!(per_seed.len() == manifest.seeds.len(), "expected.json: one `video_steps` per seed");
    for (seed, steps) in manifest.seeds.iter().zip(per_seed) {
        let steps: Vec<usize> = numbers(steps)?.into_iter().map(|n| n as usize).collect();
        assert_eq!(seed.video_steps, steps);
    }
    // Seed 1 has no video of its own and is no fork: no seed answers for it.
    assert_eq!(manifest.video_owner(1, 3), None);
    assert_eq!(manifest.video_owner(0, 3), Some(0));

    let probes = indices(&expected, "video_probe_indices")?;
    for entry in get(&expected, "videos")?.as_array().context("`videos` is an array")? {
        let (seed_idx, step_idx) = (count(entry, "seed")?, count(entry, "step")?);
        let name = TensorName::Video { seed_idx, step_idx };
        assert_eq!(Some(name.to_string().as_str()), get(entry, "name")?.as_str());
        let info = reader.tensor_info(&name).context("the video tensor is listed")?;
        assert_eq!(info.dtype.safetensors_name(), get(entry, "dtype")?.as_str().context("a dtype")?);
        let tensor = reader.load(&name)?;
        assert_eq!(tensor.dims().to_vec(), indices(entry, "shape")?);
        let stored = values(&tensor)?;
        let sum: f64 = stored.iter().copied().map(f64::from).sum();
        close(sum, number(entry, "sum")?, &format!("{name} sum"))?;
        close(sum / stored.len() as f64, number(entry, "mean")?, &format!("{name} mean"))?;
        let (min, max) = stored.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        close(f64::from(min), number(entry, "min")?, &format!("{name} min"))?;
        close(f64::from(max), number(entry, "max")?, &format!("{name} max"))?;
        ensure!(min >= -1.0 && max <= 1.0, "{name}: the decoder's output lies in [-1, 1]");
        for (&index, want) in probes.iter().zip(numbers(get(entry, "probe_values")?)?) {
            close(f64::from(stored[index]), want, &format!("{name}[{index}]"))?;
        }
    }
    Ok(())
}

#[test]
fn captures_have_the_shapes_the_model_implies() -> Result<()> {
    let (reader, expected) = open()?;
    let manifest = reader.manifest();
    let [tok_f, tok_h, tok_w] = manifest.token_grid();
    let heads = count(&expected, "heads")?;
    let text_len = count(&expected, "text_len")?;
    let width = count(&expected, "model_width")?;
    let queries = manifest.captures.query_tokens.len();
    for (seed_idx, seed) in manifest.seeds.iter().enumerate() {
        for &step_idx in &seed.capture_steps {
            for &layer_idx in &manifest.captures.layers {
                for &kind in &manifest.captures.kinds {
                    let tensor = reader.capture(seed_idx, step_idx, layer_idx, kind)?;
                    let shape = match kind {
                        CaptureKind::Decoded | CaptureKind::X0 => manifest.latent_shape.to_vec(),
                        CaptureKind::TokenNorm => vec![tok_f, tok_h, tok_w],
                        CaptureKind::Pca3 => vec![3, tok_f, tok_h, tok_w],
                        CaptureKind::SelfAttn => vec![heads, queries, manifest.token_count()],
                        CaptureKind::CrossAttn => vec![heads, queries, text_len],
                        CaptureKind::Hidden => vec![width, tok_f, tok_h, tok_w],
                    };
                    assert_eq!(
                        tensor.dims(),
                        shape.as_slice(),
                        "s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}"
                    );
                    if kind.is_attention() {
                        // Each query's probabilities over the keys sum to 1.
                        let sums = values(&tensor.sum(2)?)?;
                        ensure!(
                            sums.iter().all(|sum| (sum - 1.0).abs() < 1e-5),
                            "s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}: rows sum to {sums:?}"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn x0_is_x_t_minus_sigma_v_at_every_step() -> Result<()> {
    let (reader, _) = open()?;
    let manifest = reader.manifest();
    for (seed_idx, seed) in manifest.seeds.iter().enumerate() {
        for &step_idx in &seed.steps {
            let sigma = manifest.schedule.sigmas[step_idx];
            let x_t = reader.latents(seed_idx, step_idx)?;
            let velocity = reader.velocity(seed_idx, step_idx)?;
            let recomputed = (&x_t - (&velocity * sigma)?)?;
            let diff = max_abs_diff(&reader.x0(seed_idx, step_idx)?, &recomputed);
            ensure!(diff <= X0_TOLERANCE, "s{seed_idx}/k{step_idx}: x0 is {diff} away from x_t - sigma * v");
        }
    }
    Ok(())
}

#[test]
fn the_schedule_and_the_noise_are_the_engines_own() -> Result<()> {
    let (reader, _) = open()?;
    let manifest = reader.manifest();
    let recorded = &manifest.schedule;
    let ours = Schedule::new(recorded.scheduler, recorded.steps, recorded.shift)?;
    let bits = |values: &[f64]| values.iter().map(|value| value.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&recorded.sigmas), bits(&ours.sigmas), "sigmas, bit for bit");
    assert_eq!(bits(&recorded.timesteps), bits(&ours.timesteps), "timesteps, bit for bit");
    for (seed_idx, seed) in manifest.seeds.iter().enumerate() {
        let NoiseSource::RngSeed(rng_seed) = seed.noise else {
            anyhow::bail!("seed {seed_idx} was exported with Stepscope's seeded noise");
        };
        let noise = gaussian_noise(rng_seed, manifest.latent_shape.to_vec(), &Device::Cpu)?;
        let stored = values(&reader.latents(seed_idx, 0)?)?;
        let engine = values(&noise)?;
        let differing = stored.iter().zip(&engine).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        ensure!(differing == 0, "seed {seed_idx}: {differing} noise values differ from the engine's");
    }
    Ok(())
}

/// The exporter's `x0` capture at the last block (guidance 3, both passes combined) is the
/// step's `x0_hat`, as the format says, read back by the engine: within 1e-5.
#[test]
fn the_last_blocks_x0_capture_is_the_steps_x0() -> Result<()> {
    let (reader, _) = open()?;
    let manifest = reader.manifest();
    let last = *manifest.captures.layers.iter().max().context("captured layers")?;
    for (seed_idx, seed) in manifest.seeds.iter().enumerate() {
        for &step_idx in &seed.capture_steps {
            let layer = values(&reader.capture(seed_idx, step_idx, last, CaptureKind::X0)?)?;
            let x0 = values(&reader.x0(seed_idx, step_idx)?)?;
            let largest = layer.iter().zip(&x0).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
            ensure!(largest <= 1e-5, "s{seed_idx}/k{step_idx}: layer {last}'s x0 differs by {largest}");
        }
    }
    Ok(())
}
