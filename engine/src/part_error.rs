//! What goes wrong reading one part of a model folder (a text encoder, a VAE, a pipeline's
//! index): the file and what is wrong with it, said once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The file could not be read.
    #[error("{}: cannot read {what}: {cause}", .path.display())]
    Read { path: PathBuf, what: &'static str, cause: std::io::Error },

    /// A config that is not what the part needs.
    #[error("{}: {what}", .path.display())]
    Config { path: PathBuf, what: String },

    /// Weights that are missing, mis-shaped or unreadable.
    #[error("{}: {what}", .path.display())]
    Weights { path: PathBuf, what: String },
}
