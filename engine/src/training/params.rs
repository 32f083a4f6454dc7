//! The trainable parameters: every tensor of the transformer, keyed by its diffusers name, and
//! one learned prompt embedding per task (`prompts.{task}`, `[1, L, text_dim]`).
use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;

use super::config::TrainConfig;
use super::error::{Result, TrainingError};
use crate::model::checkpoint::expected_tensors;
use crate::model::{Kernels, WanConfig, WanTransformer};
use crate::session::noise::gaussian_noise;
use crate::tasks::rng::SplitMix64;

/// Key prefix of the learned prompt embeddings among the parameters.
pub const PROMPT_PREFIX: &str = "prompts.";

/// Named trainable tensors (f32), in key order.
#[derive(Debug, Clone)]
pub struct Parameters {
    vars: BTreeMap<String, Var>,
}

impl Parameters {
    /// Fresh parameters, initialised as diffusers/PyTorch do: linear and patch weights and biases
    /// uniform in `+-1/sqrt(fan_in)`, norm weights 1 and biases 0, modulation tables
    /// `randn / sqrt(D)`; prompt embeddings `randn`. Deterministic in `config.seed`.
    pub fn init(config: &TrainConfig, device: &Device) -> Result<Self> {
        let model = &config.model;
        let shapes = expected_tensors(model);
        let mut rng = SplitMix64::new(config.seed ^ 0x5eed_1417);
        let mut vars = BTreeMap::new();
        for (key, shape) in &shapes {
            let tensor = if key.ends_with("norm_q.weight")
                || key.ends_with("norm_k.weight")
                || key.ends_with("norm2.weight")
            {
                Tensor::ones(shape.as_slice(), DType::F32, device)?
            } else if key.ends_with("norm2.bias") {
                Tensor::zeros(shape.as_slice(), DType::F32, device)?
            } else if key.ends_with("scale_shift_table") {
                let scale = 1.0 / (model.inner_dim() as f64).sqrt();
                (gaussian_noise(rng.next_u64(), shape.as_slice(), device)? * scale)?
            } else {
                let weight_shape = match key.strip_suffix("bias") {
                    Some(stem) => shapes.get(&format!("{stem}weight")).unwrap_or(shape),
                    None => shape,
                };
                let fan_in: usize = weight_shape.iter().skip(1).product();
                uniform(&mut rng, shape, 1.0 / (fan_in.max(1) as f64).sqrt(), device)?
            };
            vars.insert(key.clone(), Var::from_tensor(&tensor)?);
        }
        for mix in &config.tasks {
            let shape = [1, config.prompt_tokens, model.text_dim];
            let prompt = gaussian_noise(rng.next_u64(), shape.as_slice(), device)?;
            vars.insert(format!("{PROMPT_PREFIX}{}", mix.task), Var::from_tensor(&prompt)?);
        }
        Ok(Self { vars })
    }

    /// Parameters from saved tensors (a checkpoint), checked against what `config` needs.
    pub fn from_tensors(config: &TrainConfig, tensors: BTreeMap<String, Tensor>) -> Result<Self> {
        let mut expected = expected_tensors(&config.model);
        for mix in &config.tasks {
            expected.insert(
                format!("{PROMPT_PREFIX}{}", mix.task),
                vec![1, config.prompt_tokens, config.model.text_dim],
            );
        }
        let mut vars = BTreeMap::new();
        for (key, shape) in expected {
            let tensor = tensors
                .get(&key)
                .ok_or_else(|| TrainingError::Setup(format!("saved parameters lack `{key}`")))?;
            if tensor.dims() != shape.as_slice() {
                return Err(TrainingError::Setup(format!(
                    "saved parameter `{key}` has shape {:?}, the recipe needs {shape:?}",
                    tensor.dims()
                )));
            }
            vars.insert(key, Var::from_tensor(&tensor.to_dtype(DType::F32)?)?);
        }
        Ok(Self { vars })
    }

    /// The transformer over these parameters with differentiable kernels: its forward pass
    /// reads the `Var`s, so `backward` yields their gradients, and updates show at once.
    pub fn model(&self, config: &WanConfig, device: &Device) -> Result<WanTransformer> {
        let tensors: HashMap<String, Tensor> =
            self.vars.iter().map(|(key, var)| (key.clone(), var.as_tensor().clone())).collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Ok(WanTransformer::with_kernels(config.clone(), vb, Kernels::Differentiable)?)
    }

    /// The prompt embedding `[1, L, text_dim]` of `task`.
    pub fn prompt(&self, task: &str) -> Result<&Var> {
        self.vars
            .get(&format!("{PROMPT_PREFIX}{task}"))
            .ok_or_else(|| TrainingError::Setup(format!("no prompt embedding for task `{task}`")))
    }

    /// `(key, var)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// Detached copies of the current values.
    pub fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        self.vars.iter().map(|(key, var)| Ok((key.clone(), var.as_tensor().detach().copy()?))).collect()
    }

    /// Number of scalars (model and prompts).
    #[must_use]
    pub fn scalar_count(&self) -> usize {
        self.vars.values().map(|var| var.elem_count()).sum()
    }
}

/// A tensor of `shape` uniform in `[-bound, bound)` from `rng`.
fn uniform(rng: &mut SplitMix64, shape: &[usize], bound: f64, device: &Device) -> Result<Tensor> {
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32).collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// Splits parameters (or their average) into the model's tensors and the prompt embeddings
/// keyed by task name.
#[must_use]
pub fn split_prompts(
    tensors: &BTreeMap<String, Tensor>,
) -> (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) {
    let mut model = BTreeMap::new();
    let mut prompts = BTreeMap::new();
    for (key, tensor) in tensors {
        match key.strip_prefix(PROMPT_PREFIX) {
            Some(task) => prompts.insert(task.to_owned(), tensor.clone()),
            None => model.insert(key.clone(), tensor.clone()),
        };
    }
    (model, prompts)
}
