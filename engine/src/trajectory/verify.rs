//! Checking a whole file (`stepscope info --verify`): every tensor's bytes against its
//! checksums, and a count of the non-finite values each holds.

use std::fmt;

use super::error::TrajectoryError;
use super::header::StorageDtype;
use super::names::TensorName;
use super::reader::TrajectoryReader;

/// How many values of a tensor are NaN, +infinity and -infinity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NonFinite {
    pub nan: usize,
    pub pos_inf: usize,
    pub neg_inf: usize,
}

impl NonFinite {
    /// Whether any value is not finite.
    #[must_use]
    pub fn any(self) -> bool {
        self.nan + self.pos_inf + self.neg_inf > 0
    }

    fn count(&mut self, value: f32) {
        if value.is_nan() {
            self.nan += 1;
        } else if value == f32::INFINITY {
            self.pos_inf += 1;
        } else if value == f32::NEG_INFINITY {
            self.neg_inf += 1;
        }
    }
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} NaN, {} +inf, {} -inf", self.nan, self.pos_inf, self.neg_inf)
    }
}

/// What checking one tensor found.
#[derive(Debug)]
pub struct TensorCheck {
    pub name: TensorName,
    /// The tensor's size in the file.
    pub bytes: usize,
    /// Its first chunk that does not match its checksum, if one does not.
    pub corrupt: Option<TrajectoryError>,
    /// Its non-finite values (counted whether or not it is corrupt).
    pub non_finite: NonFinite,
}

impl TrajectoryReader {
    /// Checks every tensor, in file order: its chunks against the checksums (a version-1 file
    /// has none: only the counts are found) and its non-finite values. Calls `progress` with
    /// the bytes checked so far after each tensor. Reads the whole file once.
    pub fn verify(&self, mut progress: impl FnMut(usize)) -> Vec<TensorCheck> {
        let mut done = 0;
        let names: Vec<TensorName> = self.tensor_names().copied().collect();
        names
            .into_iter()
            .map(|name| {
                let Some(info) = self.tensor_info(&name) else {
                    let missing = TrajectoryError::TensorNotFound {
                        path: self.path().to_owned(),
                        tensor: name.to_string(),
                    };
                    return TensorCheck {
                        name,
                        bytes: 0,
                        corrupt: Some(missing),
                        non_finite: NonFinite::default(),
                    };
                };
                let (dtype, len) = (info.dtype, info.data_range.len());
                let corrupt = self.checked_bytes(&name, 0..len).err();
                let non_finite =
                    self.tensor_bytes(&name).map(|bytes| count_non_finite(bytes, dtype)).unwrap_or_default();
                done += len;
                progress(done);
                TensorCheck { name, bytes: len, corrupt, non_finite }
            })
            .collect()
    }
}

/// The non-finite values among `bytes`, little-endian elements of `dtype`.
fn count_non_finite(bytes: &[u8], dtype: StorageDtype) -> NonFinite {
    let mut counts = NonFinite::default();
    match dtype {
        StorageDtype::F32 => {
            bytes.as_chunks::<4>().0.iter().for_each(|b| counts.count(f32::from_le_bytes(*b)));
        }
        StorageDtype::F16 => {
            bytes.as_chunks::<2>().0.iter().for_each(|b| counts.count(half::f16::from_le_bytes(*b).to_f32()));
        }
        StorageDtype::Bf16 => {
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .for_each(|b| counts.count(half::bf16::from_le_bytes(*b).to_f32()));
        }
    }
    counts
}
