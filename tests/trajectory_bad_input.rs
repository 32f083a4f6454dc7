//! Broken trajectory files, crafted byte by byte: each must give the right error, naming the file
//! and the problem, and none may panic.
//!
//! Every file here is built as the format specifies: an 8-byte little-endian header length, the
//! JSON header, then the data section. The baseline ([`valid_manifest`], [`valid_header`]) opens
//! cleanly, so each test's failure comes from the one defect it introduces.

use std::path::Path;

use serde_json::{Value, json};
use stepscope_engine::trajectory::{MANIFEST_KEY, TrajectoryError, TrajectoryReader};

const FILE_NAME: &str = "bad.safetensors";

/// A one-seed, two-step manifest promising `s0/k0/latents` and `s0/k1/latents`, each `[1, 1, 1, 2]`.
fn valid_manifest() -> Value {
    json!({
        "format_version": 1,
        "created_by": "hand-crafted test file",
        "model": {"source": "none", "config": {}, "dtype": "f32"},
        "conditioning": {
            "prompt": null,
            "prompt_embeddings": "none",
            "guidance_scale": 1.0,
            "negative_prompt": false,
            "condition_frame": false,
            "task": null
        },
        "schedule": {
            "scheduler": "euler",
            "steps": 2,
            "shift": 1.0,
            "sigmas": [1.0, 0.5, 0.0],
            "timesteps": [1000.0, 500.0]
        },
        "latent_shape": [1, 1, 1, 2],
        "patch_size": [1, 1, 1],
        "step_tensors": ["latents"],
        "seeds": [
            {"noise": {"rng_seed": 1}, "forked_from": null, "steps": [0, 1], "capture_steps": [], "final_latents": false}
        ],
        "captures": {"layers": [], "kinds": [], "query_tokens": []}
    })
}

/// A header holding `manifest` and the two promised tensors, 8 bytes each, in a 16-byte data
/// section.
fn valid_header(manifest: &Value) -> Value {
    json!({
        "__metadata__": {MANIFEST_KEY: manifest.to_string()},
        "s0/k0/latents": {"dtype": "F32", "shape": [1, 1, 1, 2], "data_offsets": [0, 8]},
        "s0/k1/latents": {"dtype": "F32", "shape": [1, 1, 1, 2], "data_offsets": [8, 16]}
    })
}

/// The data section of the valid file: four f32 values.
fn valid_data() -> Vec<u8> {
    [1.0_f32, 2.0, 3.0, 4.0].iter().flat_map(|value| value.to_le_bytes()).collect()
}

/// The bytes of a file: the header length, `header`, then `data`.
fn craft(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The bytes of a valid file with the header `header`.
fn craft_json(header: &Value, data: &[u8]) -> Vec<u8> {
    craft(&header.to_string(), data)
}

/// Writes `bytes` to a temporary `bad.safetensors` and opens it.
fn open(bytes: &[u8]) -> Result<TrajectoryReader, TrajectoryError> {
    let dir = tempfile::tempdir().expect("temp dir");
    open_in(dir.path(), bytes)
}

/// Writes `bytes` to `bad.safetensors` in `dir` (replacing it) and opens it.
fn open_in(dir: &Path, bytes: &[u8]) -> Result<TrajectoryReader, TrajectoryError> {
    let path = dir.join(FILE_NAME);
    std::fs::write(&path, bytes).expect("write crafted file");
    TrajectoryReader::open(&path)
}

/// Opens `bytes`, which must fail; returns the error and checks that its message names the file
/// and every one of `phrases`.
fn open_err(bytes: &[u8], phrases: &[&str]) -> TrajectoryError {
    let Err(error) = open(bytes) else { panic!("a broken file opened") };
    let message = error.to_string();
    assert!(message.contains(FILE_NAME), "message does not name the file: {message}");
    for phrase in phrases {
        assert!(message.contains(phrase), "message lacks {phrase:?}: {message}");
    }
    error
}

/// Applies `edit` to the valid manifest and builds the file.
fn with_manifest(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut manifest = valid_manifest();
    edit(&mut manifest);
    craft_json(&valid_header(&manifest), &valid_data())
}

/// Applies `edit` to the valid header and builds the file with `data`.
fn with_header(edit: impl FnOnce(&mut Value), data: &[u8]) -> Vec<u8> {
    let mut header = valid_header(&valid_manifest());
    edit(&mut header);
    craft_json(&header, data)
}

#[test]
fn the_handcrafted_baseline_opens() {
    let reader = open(&craft_json(&valid_header(&valid_manifest()), &valid_data())).expect("baseline opens");
    let latents = reader.latents(0, 1).expect("latents");
    let values: Vec<f32> = latents.flatten_all().and_then(|flat| flat.to_vec1()).expect("values");
    assert_eq!(values, [3.0, 4.0]);
}

#[test]
fn truncated_files_say_what_is_cut_off() {
    let error = open_err(&[1, 0, 0], &["3 bytes", "too short"]);
    assert!(matches!(error, TrajectoryError::FileTooShort { file_len: 3, .. }), "{error}");

    let valid = craft_json(&valid_header(&valid_manifest()), &valid_data());
    // Cut inside the header: the header length now points past the end.
    let error = open_err(&valid[..40], &["only 32 bytes follow it"]);
    assert!(matches!(error, TrajectoryError::HeaderPastEnd { .. }), "{error}");
    // Cut inside the data: the last tensor now reaches past the end.
    let error = open_err(
        &valid[..valid.len() - 3],
        &["`s0/k1/latents`", "offsets 8..16", "data section is 13 bytes"],
    );
    assert!(matches!(error, TrajectoryError::OffsetsPastEnd { .. }), "{error}");
}

#[test]
fn every_truncation_is_an_error_and_never_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = craft_json(&valid_header(&valid_manifest()), &valid_data());
    for len in 0..valid.len() {
        assert!(open_in(dir.path(), &valid[..len]).is_err(), "a file cut to {len} bytes opened");
    }
}

#[test]
fn corrupting_any_byte_never_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = craft_json(&valid_header(&valid_manifest()), &valid_data());
    // One replacement per position (cycling through a quote, a digit and invalid UTF-8) keeps
    // the test quick on slow file systems while still hitting every byte.
    for (position, replacement) in (0..valid.len()).zip([b'"', b'9', 0xff].into_iter().cycle()) {
        let mut bytes = valid.clone();
        bytes[position] = replacement;
        // Ok or Err are both fine; a panic fails the test.
        let _ = open_in(dir.path(), &bytes);
    }
}

#[test]
fn a_header_that_is_not_json_is_reported_with_its_position() {
    let error = open_err(&craft("{\"s0/k0/latents\": oops", &[]), &["not valid safetensors JSON", "line 1"]);
    assert!(matches!(error, TrajectoryError::HeaderJson { .. }), "{error}");

    let error = open_err(&craft("[1, 2, 3]", &[]), &["not valid safetensors JSON"]);
    assert!(matches!(error, TrajectoryError::HeaderJson { .. }), "{error}");

    let mut bytes = craft("{}      ", &[]);
    bytes[9] = 0xff;
    let error = open_err(&bytes, &["not UTF-8"]);
    assert!(matches!(error, TrajectoryError::HeaderNotUtf8 { .. }), "{error}");

    // `__metadata__` values must be strings.
    let bytes = with_header(|header| header["__metadata__"] = json!({MANIFEST_KEY: 5}), &valid_data());
    let error = open_err(&bytes, &["not valid safetensors JSON"]);
    assert!(matches!(error, TrajectoryError::HeaderJson { .. }), "{error}");
}

#[test]
fn a_header_length_beyond_the_file_is_reported() {
    let mut bytes = craft_json(&valid_header(&valid_manifest()), &valid_data());
    let header_len = (bytes.len() as u64) * 2;
    bytes[..8].copy_from_slice(&header_len.to_le_bytes());
    let error = open_err(&bytes, &[&format!("says {header_len} bytes")]);
    assert!(matches!(error, TrajectoryError::HeaderPastEnd { .. }), "{error}");

    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let error = open_err(&bytes, &["above the 100000000-byte limit"]);
    assert!(matches!(error, TrajectoryError::HeaderTooLarge { header_len: u64::MAX, .. }), "{error}");
}

#[test]
fn a_tensor_offset_past_the_end_is_reported() {
    let bytes =
        with_header(|header| header["s0/k1/latents"]["data_offsets"] = json!([8, 800]), &valid_data());
    let error = open_err(
        &bytes,
        &["tensor `s0/k1/latents` declares offsets 8..800 but the data section is 16 bytes"],
    );
    assert!(matches!(error, TrajectoryError::OffsetsPastEnd { .. }), "{error}");

    let bytes = with_header(|header| header["s0/k1/latents"]["data_offsets"] = json!([16, 8]), &valid_data());
    let error = open_err(&bytes, &["offsets 16..8", "end precedes its start"]);
    assert!(matches!(error, TrajectoryError::OffsetsReversed { .. }), "{error}");
}

#[test]
fn offsets_summing_past_usize_max_are_an_error_not_an_overflow() {
    // Tensors whose declared sizes add up to nearly 2^64 bytes: the `safetensors` crate 0.8.0
    // overflows adding them to the header length (a panic in debug builds).
    let bytes_each = usize::MAX / 8 / 4 * 4;
    let mut header = serde_json::Map::new();
    for index in 0..8 {
        let (start, end) = (index * bytes_each, (index + 1) * bytes_each);
        header.insert(
            format!("s0/k{index}/latents"),
            json!({"dtype": "F32", "shape": [bytes_each / 4], "data_offsets": [start, end]}),
        );
    }
    let error = open_err(&craft_json(&Value::Object(header), &[]), &["data section is 0 bytes"]);
    assert!(matches!(error, TrajectoryError::OffsetsPastEnd { .. }), "{error}");
}

#[test]
fn overlapping_offsets_name_both_tensors() {
    let bytes =
        with_header(|header| header["s0/k1/latents"]["data_offsets"] = json!([4, 12]), &valid_data()[..12]);
    let error = open_err(
        &bytes,
        &["tensors `s0/k0/latents` (offsets 0..8) and `s0/k1/latents` (offsets 4..12) overlap"],
    );
    assert!(matches!(error, TrajectoryError::OverlappingTensors { .. }), "{error}");

    // Identical ranges overlap too.
    let bytes =
        with_header(|header| header["s0/k1/latents"]["data_offsets"] = json!([0, 8]), &valid_data()[..8]);
    let error = open_err(&bytes, &["overlap"]);
    assert!(matches!(error, TrajectoryError::OverlappingTensors { .. }), "{error}");
}

#[test]
fn bytes_that_belong_to_no_tensor_are_reported() {
    let mut data = valid_data();
    data.extend_from_slice(&[0; 8]);
    let error = open_err(
        &with_header(|_| {}, &data),
        &["bytes 16..24 of the 24-byte data section belong to no tensor"],
    );
    assert!(matches!(error, TrajectoryError::UncoveredBytes { .. }), "{error}");
}

#[test]
fn dtypes_other_than_f32_f16_bf16_are_rejected() {
    for dtype in ["I64", "F64", "U8", "Q9"] {
        let bytes = with_header(|header| header["s0/k0/latents"]["dtype"] = json!(dtype), &valid_data());
        let error = open_err(&bytes, &[&format!("tensor `s0/k0/latents` has dtype `{dtype}`")]);
        assert!(matches!(error, TrajectoryError::UnsupportedDtype { .. }), "{error}");
    }
}

#[test]
fn huge_declared_shapes_are_rejected_without_allocating() {
    // The byte size overflows `usize`.
    let huge = 1_u64 << 40;
    let bytes =
        with_header(|header| header["s0/k0/latents"]["shape"] = json!([huge, huge, 1, 2]), &valid_data());
    let error = open_err(&bytes, &["`s0/k0/latents`", "overflows"]);
    assert!(matches!(error, TrajectoryError::ShapeOverflow { .. }), "{error}");

    // The byte size fits but is nothing like the 8 bytes of the tensor's offsets.
    let big = 1_u64 << 28;
    let bytes =
        with_header(|header| header["s0/k0/latents"]["shape"] = json!([big, big, 1, 2]), &valid_data());
    let error = open_err(&bytes, &["takes 576460752303423488 bytes", "offsets 0..8 span 8 bytes"]);
    assert!(matches!(error, TrajectoryError::SizeMismatch { .. }), "{error}");
}

#[test]
fn a_file_without_a_manifest_is_not_a_trajectory() {
    let remove_metadata = |header: &mut Value| {
        if let Some(map) = header.as_object_mut() {
            map.remove("__metadata__");
        }
    };
    let bytes = with_header(remove_metadata, &valid_data());
    let error = open_err(&bytes, &[MANIFEST_KEY, "not a Stepscope trajectory"]);
    assert!(matches!(error, TrajectoryError::MissingManifest { .. }), "{error}");

    let bytes = with_header(|header| header["__metadata__"] = json!({"format": "pt"}), &valid_data());
    let error = open_err(&bytes, &[MANIFEST_KEY]);
    assert!(matches!(error, TrajectoryError::MissingManifest { .. }), "{error}");
}

#[test]
fn a_manifest_that_is_not_valid_json_is_reported() {
    let bytes = with_header(
        |header| header["__metadata__"][MANIFEST_KEY] = json!("{\"format_version\": 1,"),
        &valid_data(),
    );
    let error = open_err(&bytes, &["the manifest is not valid"]);
    assert!(matches!(error, TrajectoryError::ManifestJson { .. }), "{error}");

    let bytes = with_manifest(|manifest| manifest["schedule"]["sheduler_typo"] = json!("euler"));
    let error = open_err(&bytes, &["unknown field `sheduler_typo`"]);
    assert!(matches!(error, TrajectoryError::ManifestJson { .. }), "{error}");

    let bytes = with_manifest(|manifest| manifest["schedule"]["scheduler"] = json!("ddim"));
    let error = open_err(&bytes, &["unknown variant `ddim`"]);
    assert!(matches!(error, TrajectoryError::ManifestJson { .. }), "{error}");

    let bytes = with_manifest(|manifest| {
        if let Some(map) = manifest.as_object_mut() {
            map.remove("format_version");
        }
    });
    let error = open_err(&bytes, &["missing field `format_version`"]);
    assert!(matches!(error, TrajectoryError::ManifestJson { .. }), "{error}");
}

#[test]
fn an_inconsistent_manifest_names_the_field() {
    let bytes = with_manifest(|manifest| manifest["schedule"]["sigmas"] = json!([1.0, 0.0]));
    let error = open_err(&bytes, &["`schedule.sigmas` has 2 values but 2 steps need steps + 1"]);
    assert!(matches!(error, TrajectoryError::InvalidManifest { .. }), "{error}");

    let bytes = with_manifest(|manifest| manifest["seeds"][0]["steps"] = json!([1, 0]));
    let error = open_err(&bytes, &["`seeds[0].steps` is not strictly increasing"]);
    assert!(matches!(error, TrajectoryError::InvalidManifest { .. }), "{error}");
}

#[test]
fn interventions_must_belong_to_a_fork_and_fit_the_latent() {
    let skip = json!({"kind": "skip_layers", "layers": [0]});
    let bytes = with_manifest(|manifest| manifest["seeds"][0]["intervention"] = skip);
    open_err(&bytes, &["`seeds[0].intervention` is set, but the seed is not a fork"]);

    let fork = json!({"seed_index": 0, "step": 1});
    let second = |intervention: Value| {
        let fork = fork.clone();
        with_manifest(move |manifest| {
            let mut seed = manifest["seeds"][0].clone();
            seed["forked_from"] = fork;
            seed["steps"] = json!([]);
            seed["intervention"] = intervention;
            manifest["seeds"].as_array_mut().unwrap().push(seed);
        })
    };
    let outside = json!({"kind": "paint_x0", "pixels": [[0, 0, 2]], "value": [1.0]});
    open_err(
        &second(outside),
        &["`seeds[1].intervention` paints pixel [0, 0, 2], outside the [1, 1, 2] latent frames"],
    );
    let channels = json!({"kind": "paint_x0", "pixels": [[0, 0, 1]], "value": [1.0, 2.0]});
    open_err(&second(channels), &["paints 2 channel values; the latent has 1 channels"]);
    let unknown = json!({"kind": "rotate", "degrees": 90});
    open_err(&second(unknown), &["rotate"]);
    let fine = json!({"kind": "paint_x0", "pixels": [[0, 0, 1]], "value": [1.0]});
    let reader = open(&second(fine)).unwrap();
    assert!(reader.manifest().seeds[1].intervention.is_some());
}

#[test]
fn decoded_videos_need_their_shape_and_recorded_steps() {
    let video = json!({"shape": [3, 1, 2, 4], "decoder": "hand-crafted"});
    let bytes = with_manifest(|manifest| manifest["seeds"][0]["video_steps"] = json!([1]));
    open_err(&bytes, &["`seeds[0].video_steps` is set, but the manifest has no `video`"]);
    let with_video = |video: Value, steps: Value| {
        with_manifest(move |manifest| {
            manifest["video"] = video;
            manifest["seeds"][0]["video_steps"] = steps;
        })
    };
    open_err(
        &with_video(video.clone(), json!([2])),
        &["`seeds[0].video_steps` holds step 2, which is not one of its recorded `steps`"],
    );
    open_err(
        &with_video(video.clone(), json!([1, 0])),
        &["`seeds[0].video_steps` is not strictly increasing"],
    );
    open_err(
        &with_video(json!({"shape": [4, 1, 2, 4], "decoder": "x"}), json!([1])),
        &["`video.shape` [4, 1, 2, 4] is not an RGB video"],
    );
    // A promised video that is not in the file, then one with the wrong shape.
    open_err(&with_video(video.clone(), json!([1])), &["s0/k1/video"]);
    let manifest = {
        let mut manifest = valid_manifest();
        manifest["video"] = video;
        manifest["seeds"][0]["video_steps"] = json!([1]);
        manifest
    };
    let mut data = valid_data();
    data.extend(std::iter::repeat_n(0_u8, 3 * 2 * 4 * 4));
    let mut header = valid_header(&manifest);
    header["s0/k1/video"] = json!({"dtype": "F32", "shape": [3, 1, 4, 2], "data_offsets": [16, 112]});
    open_err(&craft_json(&header, &data), &["s0/k1/video", "[3, 1, 2, 4]"]);
    header["s0/k1/video"] = json!({"dtype": "F32", "shape": [3, 1, 2, 4], "data_offsets": [16, 112]});
    let reader = open(&craft_json(&header, &data)).unwrap();
    assert_eq!(reader.manifest().seeds[0].video_steps, [1]);
}

#[test]
fn a_future_format_version_is_a_clear_error() {
    let bytes = with_manifest(|manifest| manifest["format_version"] = json!(3));
    let error = open_err(&bytes, &["format version 3", "reads versions 1 to 2", "from a newer Stepscope"]);
    assert!(matches!(error, TrajectoryError::UnsupportedVersion { found: 3, .. }), "{error}");

    // Version 2 is readable but carries checksums: a version-2 manifest without them is refused.
    let bytes = with_manifest(|manifest| manifest["format_version"] = json!(2));
    let error = open_err(&bytes, &["format version 2", "has no `stepscope.checksums`"]);
    assert!(matches!(error, TrajectoryError::MissingChecksums { .. }), "{error}");

    // A newer version may add fields: the version is reported, not the unknown field.
    let bytes = with_manifest(|manifest| {
        manifest["format_version"] = json!(3);
        manifest["new_in_v3"] = json!(true);
    });
    let error = open_err(&bytes, &["format version 3"]);
    assert!(matches!(error, TrajectoryError::UnsupportedVersion { found: 3, .. }), "{error}");

    let bytes = with_manifest(|manifest| manifest["format_version"] = json!(0));
    let error = open_err(&bytes, &["format version 0"]);
    assert!(matches!(error, TrajectoryError::UnsupportedVersion { found: 0, .. }), "{error}");
}

#[test]
fn a_tensor_the_manifest_promises_but_the_file_lacks_is_named() {
    let bytes = with_manifest(|manifest| manifest["seeds"][0]["final_latents"] = json!(true));
    let error = open_err(&bytes, &["the manifest promises tensor `s0/final/latents`"]);
    assert!(matches!(error, TrajectoryError::MissingTensor { .. }), "{error}");

    let bytes = with_manifest(|manifest| manifest["step_tensors"] = json!(["latents", "x0"]));
    let error = open_err(&bytes, &["`s0/k0/x0`"]);
    assert!(matches!(error, TrajectoryError::MissingTensor { .. }), "{error}");
}

#[test]
fn tensors_the_manifest_does_not_explain_are_named() {
    let bytes = with_manifest(|manifest| manifest["seeds"][0]["steps"] = json!([0]));
    let error = open_err(&bytes, &["tensor `s0/k1/latents` is not explained by the manifest"]);
    assert!(matches!(error, TrajectoryError::UnexpectedTensor { .. }), "{error}");

    let rename = |header: &mut Value| {
        if let Some(map) = header.as_object_mut() {
            let entry = map.remove("s0/k1/latents").unwrap_or_default();
            map.insert("s0/k01/latents".to_owned(), entry);
        }
    };
    let error =
        open_err(&with_header(rename, &valid_data()), &["`s0/k01/latents` is not a trajectory tensor name"]);
    assert!(matches!(error, TrajectoryError::BadTensorName { .. }), "{error}");
}

#[test]
fn a_tensor_shape_that_contradicts_the_manifest_is_reported() {
    let bytes = with_header(|header| header["s0/k0/latents"]["shape"] = json!([2, 1, 1, 1]), &valid_data());
    let error = open_err(
        &bytes,
        &["tensor `s0/k0/latents` has shape [2, 1, 1, 1] but the manifest implies [1, 1, 1, 2]"],
    );
    assert!(matches!(error, TrajectoryError::WrongShape { .. }), "{error}");
}

#[test]
fn a_tensor_listed_twice_is_reported() {
    let entry = r#"{"dtype":"F32","shape":[1,1,1,2],"data_offsets":[0,8]}"#;
    let manifest = serde_json::to_string(&valid_manifest().to_string()).expect("quoted manifest");
    let header = format!(
        r#"{{"__metadata__":{{"{MANIFEST_KEY}":{manifest}}},"s0/k0/latents":{entry},"s0/k0/latents":{entry}}}"#
    );
    let error = open_err(&craft(&header, &valid_data()[..8]), &["lists tensor `s0/k0/latents` twice"]);
    assert!(matches!(error, TrajectoryError::DuplicateTensor { .. }), "{error}");
}

/// The schedule means what a flow-matching sampler does: noise levels in [0, 1] that never rise
/// and end at 0, each timestep 1000 sigma (truncated by UniPC, so within 1).
#[test]
fn a_schedule_that_no_sampler_follows_is_refused() {
    let schedule = |sigmas: Value, timesteps: Value| {
        with_manifest(move |manifest| {
            manifest["schedule"]["sigmas"] = sigmas;
            manifest["schedule"]["timesteps"] = timesteps;
        })
    };
    open_err(
        &schedule(json!([5.0, 5.0, 5.0]), json!([5000.0, 5000.0])),
        &["`schedule.sigmas[0]` is 5, outside [0, 1]"],
    );
    open_err(
        &schedule(json!([0.5, 1.0, 0.0]), json!([500.0, 1000.0])),
        &["`schedule.sigmas` rises from 0.5 at step 0 to 1 at step 1"],
    );
    open_err(
        &schedule(json!([1.0, 0.5, 0.25]), json!([1000.0, 500.0])),
        &["`schedule.sigmas` ends at 0.25, not 0"],
    );
    open_err(
        &schedule(json!([1.0, 0.5, 0.0]), json!([1000.0, 250.0])),
        &["`schedule.timesteps[1]` is 250, but sigma 0.5 gives 500"],
    );
    // UniPC's truncated timesteps open.
    assert!(open(&schedule(json!([0.9999, 0.5004, 0.0]), json!([999.0, 500.0]))).is_ok());
}

/// The manifest once: a `__metadata__` holding its key twice would read differently in programs
/// that keep the first and those that keep the last.
#[test]
fn a_manifest_stored_twice_is_refused() {
    let manifest = valid_manifest().to_string();
    let mut other = valid_manifest();
    other["created_by"] = json!("another writer");
    let header = valid_header(&valid_manifest()).to_string();
    let first_entry = format!("{}:{}", json!(MANIFEST_KEY), json!(manifest));
    let twice = format!("{first_entry},{}:{}", json!(MANIFEST_KEY), json!(other.to_string()));
    let header = header.replacen(&first_entry, &twice, 1);
    assert_ne!(header, valid_header(&valid_manifest()).to_string(), "the key was doubled");
    let error = open_err(&craft(&header, &valid_data()), &["holds the key `stepscope.manifest` twice"]);
    assert!(matches!(error, TrajectoryError::HeaderJson { .. }), "{error}");
}

/// Where the model's config names them, its channels, patch size and block count must fit the
/// file.
#[test]
fn a_model_config_that_disagrees_with_the_latents_is_refused() {
    let config = |config: Value| with_manifest(move |manifest| manifest["model"]["config"] = config);
    open_err(
        &config(json!({"out_channels": 16, "in_channels": 16})),
        &["`model.config` gives the model 16 output channels but `latent_shape` has 1"],
    );
    open_err(&config(json!({"in_channels": 4})), &["gives the model 4 output channels"]);
    open_err(
        &config(json!({"patch_size": [1, 2, 2]})),
        &["`model.config.patch_size`", "but `patch_size` is [1, 1, 1]"],
    );
    let captured = with_manifest(|manifest| {
        manifest["model"]["config"] = json!({"num_layers": 1});
        manifest["captures"] = json!({"layers": [3], "kinds": ["token_norm"], "query_tokens": []});
    });
    open_err(&captured, &["`captures.layers` includes block 3 but the model has 1 blocks"]);
    assert!(open(&config(json!({"out_channels": 1, "patch_size": [1, 1, 1], "num_layers": 2}))).is_ok());
}
