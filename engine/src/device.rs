//! Where the engine computes: a device named as the command line and the live-run dialog name
//! it (`auto`, `cpu`, `cuda`, `cuda:N`, `metal`).

use candle_core::Device;

/// Why a device name gives no device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device `{0}`: expected auto, cpu, cuda, cuda:N or metal")]
    Unknown(String),

    #[error("device `{name}`: `{ordinal}` is not a GPU number")]
    Ordinal { name: String, ordinal: String },

    #[error(
        "device `{name}` is not available: {why} (this build: CUDA {cuda}, Metal {metal}; build with \
         `--features cuda` or `--features metal`, or pick cpu)"
    )]
    Unavailable { name: String, why: String, cuda: &'static str, metal: &'static str },
}

/// The names the live-run dialog offers, `auto` first.
pub const DEVICE_CHOICES: [&str; 4] = ["auto", "cpu", "cuda:0", "metal"];

/// Whether this build can compute on CUDA or Metal at all.
fn built_with() -> (&'static str, &'static str) {
    let cuda = if candle_core::utils::cuda_is_available() { "built in" } else { "not built in" };
    let metal = if candle_core::utils::metal_is_available() { "built in" } else { "not built in" };
    (cuda, metal)
}

/// The device `name` names. `auto` is the first CUDA GPU where this build has CUDA and one
/// starts, else Metal likewise, else the CPU.
pub fn device_named(name: &str) -> Result<Device, DeviceError> {
    let unavailable = |err: candle_core::Error| {
        let (cuda, metal) = built_with();
        DeviceError::Unavailable { name: name.to_owned(), why: err.to_string(), cuda, metal }
    };
    match name {
        "auto" => Ok(auto_device()),
        "cpu" => Ok(Device::Cpu),
        "metal" => Device::new_metal(0).map_err(unavailable),
        "cuda" => Device::new_cuda(0).map_err(unavailable),
        other => {
            let Some(ordinal) = other.strip_prefix("cuda:") else {
                return Err(DeviceError::Unknown(other.to_owned()));
            };
            let number = ordinal
                .parse()
                .map_err(|_| DeviceError::Ordinal { name: other.to_owned(), ordinal: ordinal.to_owned() })?;
            Device::new_cuda(number).map_err(unavailable)
        }
    }
}

fn auto_device() -> Device {
    if candle_core::utils::cuda_is_available()
        && let Ok(device) = Device::new_cuda(0)
    {
        return device;
    }
    if candle_core::utils::metal_is_available()
        && let Ok(device) = Device::new_metal(0)
    {
        return device;
    }
    Device::Cpu
}

/// A short name of `device` for messages and the window (`cpu`, `cuda:0`, `metal`).
#[must_use]
pub fn device_label(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_devices_or_say_what_is_wrong() {
        assert!(device_named("cpu").is_ok_and(|device| device.is_cpu()));
        // Without a GPU build, auto is the CPU (and on a GPU build it is never an error).
        assert!(device_named("auto").is_ok());
        let err = device_named("tpu").unwrap_err().to_string();
        assert!(err.contains("expected auto, cpu, cuda, cuda:N or metal"), "{err}");
        let err = device_named("cuda:x").unwrap_err().to_string();
        assert!(err.contains("`x` is not a GPU number"), "{err}");
        if !candle_core::utils::cuda_is_available() {
            let err = device_named("cuda:0").unwrap_err().to_string();
            assert!(err.contains("build with `--features cuda`"), "{err}");
        }
        assert_eq!(device_label(&Device::Cpu), "cpu");
    }
}
