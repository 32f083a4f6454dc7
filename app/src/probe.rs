//! `stepscope probe`: linear probes per (step, layer) of a trained model on held-out task
//! instances; prints the balanced accuracy as a table, writes the result file and a PNG heatmap.
use std::path::Path;

use anyhow::{Context, Result, bail};
use stepscope::viewer::figure::{ColourBar, Grid, Labels, labelled};
use stepscope::viewer::gpu::Colormap;
use stepscope_engine::analysis::{
    PROBE_VERSION, ProbePlan, ProbeRecord, ProbeResult, fit_probes, write_probe_file,
};
use stepscope_engine::tasks::TaskParams;
use stepscope_engine::training::SamplerSettings;
use stepscope_engine::trajectory::replace_file_with;

use crate::cli::ProbeArgs;
use crate::instances::pick_instances;
use crate::progress::progress_bar;
use crate::task_model::{TaskModel, load_task_model};

/// Pixels per heatmap cell in the PNG.
const CELL_PX: u32 = 16;

pub fn run(args: &ProbeArgs) -> Result<()> {
    let TaskModel { model, prompt, kind, dir: model_dir } = load_task_model(args.model.clone(), &args.task)?;
    let prompt = &prompt;
    if args.instances == 0 || args.test_instances == 0 {
        bail!("--instances and --test-instances must both be at least 1");
    }
    let params = TaskParams { size: args.size.unwrap_or(kind.default_params().size), frames: args.frames };
    let total = args
        .instances
        .checked_add(args.test_instances)
        .context("--instances + --test-instances overflows")?;
    let mut picked = pick_instances(&model_dir, kind, &params, (args.split, args.seed_offset, total))?;
    eprintln!("{}", picked.summary);
    let test_seeds = picked.seeds.split_off(usize::try_from(args.instances)?);
    let plan = ProbePlan {
        task: kind,
        params,
        train_seeds: picked.seeds,
        test_seeds,
        sampler: SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler },
        frame: args.frame.unwrap_or(args.frames.saturating_sub(1)),
        ridge: args.ridge,
    };
    let bar = progress_bar(args.quiet, args.instances + args.test_instances, 0, "instances");
    bar.set_message("sampling");
    let result = fit_probes(&model, prompt, &plan, &mut || bar.inc(1)).context("fitting the probes")?;
    bar.finish_and_clear();

    let record = ProbeRecord {
        version: PROBE_VERSION,
        task: kind.name().to_owned(),
        size: plan.params.size,
        frames: plan.params.frames,
        frame: plan.frame,
        train_seeds: seed_span(&plan.train_seeds),
        test_seeds: seed_span(&plan.test_seeds),
        split: picked.split.to_owned(),
        train_instances: plan.train_seeds.clone(),
        test_instances: plan.test_seeds.clone(),
        scheduler: args.scheduler.to_string(),
        sampler_steps: args.steps,
        shift: args.shift,
        ridge: args.ridge,
        model: model_dir.display().to_string(),
        steps: result.steps,
        layers: result.layers,
        chance: result.chance,
        train_tokens: result.train_tokens,
        test_tokens: result.test_tokens,
    };
    if let Some(output) = &args.output {
        write_probe_file(output, &record, &result)?;
    }
    print_table(&result);
    if let Some(png) = &args.png {
        let title = (!args.bare).then(|| {
            format!(
                "Linear probes, {} {} frame {}: trained on instances {}..{}, tested on held-out {}..{} ({} test tokens)",
                record.task,
                record.size,
                record.frame,
                record.train_seeds[0],
                record.train_seeds[1],
                record.test_seeds[0],
                record.test_seeds[1],
                record.test_tokens
            )
        });
        let label = format!("balanced accuracy (0.5: chance; majority {:.3})", result.chance);
        let map = Heatmap { values: &result.balanced_accuracy, range: [0.5, 1.0], label };
        write_heatmap_png(png, &result, &map, title.as_deref())?;
    }
    if let Some(png) = &args.baseline_png {
        let over = result.over_baseline().context("the probes were fitted without baselines")?;
        let title = (!args.bare).then(|| {
            format!(
                "Linear probes over the stronger baseline, {} {} frame {} ({} test tokens)",
                record.task, record.size, record.frame, record.test_tokens
            )
        });
        let label = "balanced accuracy minus max(layout, x0_hat readout) at the step".to_owned();
        let map = Heatmap { values: &over, range: [-0.25, 0.25], label };
        write_heatmap_png(png, &result, &map, title.as_deref())?;
    }
    Ok(())
}

/// What a heatmap figure shows: `[steps, layers]` values, the colour range and the bar's label.
struct Heatmap<'a> {
    values: &'a [f64],
    range: [f32; 2],
    label: String,
}

/// Balanced accuracy, one row per step, one column per layer, then the baselines: the layout
/// alone and the step's `x0_hat` read linearly.
fn print_table(result: &ProbeResult) {
    let header: Vec<String> = (0..result.layers).map(|layer| format!("L{layer}")).collect();
    println!("balanced accuracy (0.5 = chance; majority-class accuracy {:.3})", result.chance);
    println!("step,{},layout_baseline,x0_readout_baseline", header.join(","));
    let text = |value: Option<f64>| value.map_or_else(String::new, |value| format!("{value:.3}"));
    for step in 0..result.steps {
        let row: Vec<String> = (0..result.layers)
            .map(|layer| format!("{:.3}", result.balanced_accuracy[step * result.layers + layer]))
            .collect();
        println!(
            "{step},{},{},{}",
            row.join(","),
            text(result.layout_balanced_accuracy),
            text(result.x0_balanced_accuracy.get(step).copied())
        );
    }
}

/// Steps across, layers up (layer 0 at the bottom), viridis over `map`'s range; with a `title`,
/// as a figure: step and layer axes, the colour bar.
fn write_heatmap_png(
    path: &Path,
    result: &ProbeResult,
    map: &Heatmap<'_>,
    title: Option<&str>,
) -> Result<()> {
    // A figure's cells are larger, to sit well beside its labels.
    let cell = if title.is_some() { 2 * CELL_PX } else { CELL_PX };
    let width = u32::try_from(result.steps).context("too many steps")? * cell;
    let height = u32::try_from(result.layers).context("too many layers")? * cell;
    let heatmap = image::RgbaImage::from_fn(width, height, |x, y| {
        let step = (x / cell) as usize;
        let layer = result.layers - 1 - (y / cell) as usize;
        let value = map.values[step * result.layers + layer];
        let rgb = Colormap::Viridis.rgb_of(value as f32, map.range);
        let [r, g, b] = rgb.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8);
        image::Rgba([r, g, b, 255])
    });
    let picture = match title {
        None => heatmap,
        Some(title) => {
            let labels = Labels {
                title: title.to_owned(),
                columns: (0..result.steps).map(|step| step.to_string()).collect(),
                rows: (0..result.layers).rev().map(|layer| layer.to_string()).collect(),
                column_axis: Some("denoising step".to_owned()),
                row_axis: Some("layer".to_owned()),
                colour_bar: Some(ColourBar {
                    map: Colormap::Viridis,
                    range: map.range,
                    ticks: vec![map.range[0], 0.5 * (map.range[0] + map.range[1]), map.range[1]],
                    label: map.label.clone(),
                }),
            };
            let grid = Grid { columns: result.steps, rows: result.layers, tile: [cell, cell], gap: 0 };
            labelled(&heatmap, grid, &labels)?
        }
    };
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    replace_file_with(path, &png)?;
    Ok(())
}

/// `[first, last + 1)` of increasing seeds (`[0, 0]` for none).
fn seed_span(seeds: &[u64]) -> [u64; 2] {
    [seeds.first().copied().unwrap_or(0), seeds.last().map_or(0, |&last| last + 1)]
}
