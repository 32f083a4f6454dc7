//! Reading a single named tensor (noise, prompt embeddings, a condition latent) from a
//! user-supplied safetensors file, with every field checked before it is trusted.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// A problem with an input tensor file; the message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct TensorFileError {
    pub path: PathBuf,
    pub what: String,
}

/// Reads tensor `name` from the safetensors file at `path` as f32 on `device`, requiring
/// `rank` dimensions; a leading batch dimension of 1 (rank + 1 dims) is accepted and dropped.
///
/// The file is memory-mapped; the `safetensors` crate validates the header (length, JSON,
/// offsets within the file, shape times dtype size equal to each tensor's byte span) before any
/// data is read, so nothing is allocated from an untrusted size.
pub fn read_tensor(path: &Path, name: &str, rank: usize, device: &Device) -> Result<Tensor, TensorFileError> {
    let fail = |what: String| TensorFileError { path: path.to_owned(), what };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    // SAFETY: read-only mapping of a user file; if another process truncates it while we read,
    // the OS may signal, as with any mmap-based reader. Inputs are read once, right away.
    #[expect(unsafe_code, reason = "memory-mapping an input file, read-only")]
    let mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| fail(format!("cannot map: {e}")))?;
    tensor_from_bytes(&mapped, path, name, rank, device)
}

/// [`read_tensor`] on a safetensors file's bytes held in memory; `path` only names the file in
/// errors.
pub fn tensor_from_bytes(
    bytes: &[u8],
    path: &Path,
    name: &str,
    rank: usize,
    device: &Device,
) -> Result<Tensor, TensorFileError> {
    let fail = |what: String| TensorFileError { path: path.to_owned(), what };
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| fail(format!("not a valid safetensors file: {e}")))?;
    let view = tensors.tensor(name).map_err(|_| {
        let mut names: Vec<&str> = tensors.names();
        names.sort_unstable();
        fail(format!("has no tensor `{name}` (it holds: {})", names.join(", ")))
    })?;
    let dims = view.shape().to_vec();
    let dims = match dims.len() {
        n if n == rank => dims,
        n if n == rank + 1 && dims[0] == 1 => dims[1..].to_vec(),
        _ => return Err(fail(format!("tensor `{name}` has shape {dims:?}; expected {rank} dimensions"))),
    };
    if dims.contains(&0) {
        return Err(fail(format!("tensor `{name}` has an empty dimension: {dims:?}")));
    }
    let dtype = match view.dtype() {
        safetensors::Dtype::F32 => DType::F32,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::BF16 => DType::BF16,
        safetensors::Dtype::F64 => DType::F64,
        other => return Err(fail(format!("tensor `{name}` is {other:?}; expected a float type"))),
    };
    let tensor = Tensor::from_raw_buffer(view.data(), dtype, &dims, device)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| fail(format!("tensor `{name}`: {e}")))?;
    let values = tensor
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| fail(format!("tensor `{name}`: {e}")))?;
    if !values.iter().all(|v| v.is_finite()) {
        return Err(fail(format!("tensor `{name}` contains NaN or infinite values")));
    }
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, name: &str, tensor: &Tensor) -> PathBuf {
        let path = dir.join(file);
        tensor.save_safetensors(name, &path).unwrap();
        path
    }

    #[test]
    fn reads_with_or_without_a_batch_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::ones((1, 5, 8), DType::F16, &Device::Cpu).unwrap();
        let path = write(dir.path(), "embeds.safetensors", "prompt_embeds", &t);
        assert_eq!(read_tensor(&path, "prompt_embeds", 2, &Device::Cpu).unwrap().dims(), &[5, 8]);
        assert_eq!(read_tensor(&path, "prompt_embeds", 3, &Device::Cpu).unwrap().dims(), &[1, 5, 8]);
    }

    #[test]
    fn names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
        let path = write(dir.path(), "x.safetensors", "other", &t);
        let err = read_tensor(&path, "noise", 4, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("no tensor `noise`") && err.contains("other"), "{err}");
        let err = read_tensor(&path, "other", 4, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("4 dimensions"), "{err}");

        let ints = Tensor::ones((2, 3), DType::U32, &Device::Cpu).unwrap();
        let path = write(dir.path(), "i.safetensors", "noise", &ints);
        assert!(read_tensor(&path, "noise", 2, &Device::Cpu).unwrap_err().to_string().contains("float"));

        let nan = Tensor::new(&[1f32, f32::NAN], &Device::Cpu).unwrap();
        let path = write(dir.path(), "n.safetensors", "noise", &nan);
        assert!(read_tensor(&path, "noise", 1, &Device::Cpu).unwrap_err().to_string().contains("NaN"));

        let garbage = dir.path().join("g.safetensors");
        std::fs::write(&garbage, [0xff; 16]).unwrap();
        assert!(
            read_tensor(&garbage, "noise", 1, &Device::Cpu).unwrap_err().to_string().contains("not a valid")
        );
        let missing = dir.path().join("missing.safetensors");
        assert!(
            read_tensor(&missing, "noise", 1, &Device::Cpu).unwrap_err().to_string().contains("cannot open")
        );
    }
}
