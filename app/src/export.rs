//! `stepscope export`: a trajectory's video over the steps as pictures for a paper or a talk:
//! a contact sheet (PNG, steps x frames) and/or a step sweep (animated GIF), coloured as the
//! window colours them.

use anyhow::{Result, ensure};
use stepscope::viewer::Document;
use stepscope::viewer::export::{
    SweepSpec, SweepTensors, contact_sheet, contact_sheet_figure, step_sweep_gif, write_png,
};
use stepscope_engine::trajectory::replace_file_with;

use crate::cli::ExportArgs;

pub fn run(args: &ExportArgs) -> Result<()> {
    let document = Document::open(&args.file)?;
    ensure!(
        args.seed < document.num_seeds(),
        "{} has {} seeds; there is no seed {}",
        args.file.display(),
        document.num_seeds(),
        args.seed
    );
    let mut spec = SweepSpec::all_steps(&document, args.seed, args.view, args.scale);
    if !args.steps.is_empty() {
        spec.steps.clone_from(&args.steps);
    }
    spec.frame = args.frame;
    let tensors = SweepTensors::load(document.source(), &document.title(), &spec)?;
    for warning in tensors.non_finite_warnings() {
        eprintln!("warning: {}: seed {} {warning}", args.file.display(), args.seed);
    }
    if let Some(path) = &args.sheet {
        let sheet = if args.bare { contact_sheet(&tensors)? } else { contact_sheet_figure(&tensors)? };
        write_png(path, &sheet)?;
        eprintln!(
            "{}: {} steps x {} frames, {} x {} pixels",
            path.display(),
            spec.steps.len(),
            tensors.num_frames(),
            sheet.width(),
            sheet.height()
        );
    }
    if let Some(path) = &args.gif {
        let gif = step_sweep_gif(&tensors, args.delay_ms)?;
        replace_file_with(path, &gif)?;
        eprintln!("{}: {} steps, {} ms each", path.display(), spec.steps.len(), args.delay_ms);
    }
    Ok(())
}
