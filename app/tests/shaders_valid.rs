#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
//! Every WGSL file under `shaders/` parses and validates with naga (the version wgpu uses), on
//! its own; and the blocks the files share by copy are the same text in each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn shader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders")
}

/// `(file name, source)` of every `.wgsl` file in `shaders/`, by name.
fn shaders() -> Vec<(String, String)> {
    let mut shaders: Vec<_> = std::fs::read_dir(shader_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wgsl"))
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    shaders.sort();
    shaders
}

/// naga's complaint about `source`, if any.
fn validate(name: &str, source: &str) -> Result<(), String> {
    let module =
        naga::front::wgsl::parse_str(source).map_err(|err| err.emit_to_string_with_path(source, name))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
        .validate(&module)
        .map_err(|err| err.emit_to_string_with_path(source, name))?;
    Ok(())
}

#[test]
fn every_shader_parses_and_validates() {
    let shaders = shaders();
    let names: Vec<&str> = shaders.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["colormap.wgsl", "difference.wgsl", "latent_rgb.wgsl"] {
        assert!(names.contains(&expected), "{expected} missing from {}", shader_dir().display());
    }
    let failures: Vec<String> = shaders
        .iter()
        .filter_map(|(name, source)| validate(name, source).err().map(|err| format!("{name}:\n{err}")))
        .collect();
    assert!(failures.is_empty(), "invalid WGSL:\n{}", failures.join("\n"));
}

#[test]
fn a_broken_shader_is_reported_with_its_name() {
    let err = validate("broken.wgsl", "fn main( {").unwrap_err();
    assert!(err.contains("broken.wgsl"), "{err}");
}

/// The text between `// --- BEGIN shared: NAME` and `// --- END shared: NAME ---`, by name.
fn shared_blocks(source: &str) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut rest = source;
    while let Some(start) = rest.find("// --- BEGIN shared: ") {
        let after = &rest[start + "// --- BEGIN shared: ".len()..];
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let end_marker = format!("// --- END shared: {name} ---");
        let end = after.find(&end_marker).unwrap_or_else(|| panic!("block {name} has no end"));
        blocks.insert(name, after[..end].to_owned());
        rest = &after[end + end_marker.len()..];
    }
    blocks
}

#[test]
fn shared_blocks_are_the_same_in_every_shader() {
    let mut first_seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, source) in shaders() {
        for (block, text) in shared_blocks(&source) {
            match first_seen.get(&block) {
                Some((first_name, first_text)) => {
                    assert_eq!(&text, first_text, "block {block} differs between {first_name} and {name}");
                }
                None => {
                    first_seen.insert(block, (name.clone(), text));
                }
            }
        }
    }
    let blocks: Vec<&str> = first_seen.keys().map(String::as_str).collect();
    assert_eq!(blocks, ["colormap_lookup", "image_common"]);
}
