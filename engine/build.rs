//! Embeds the dashboard's committed build (`ui/dist`, made by `npm run build` in `ui/`) into the
//! binary: writes `$OUT_DIR/dashboard_assets.rs`, a table of every file with its precompressed
//! `.gz`/`.br` siblings, as `include_bytes!`. No Node is needed here; a missing `ui/dist` gives
//! an empty table (the dashboard then answers 404).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dist = manifest.join("../ui/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for f in &files {
        let name = f.to_string_lossy();
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let rel = f
            .strip_prefix(&dist)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let sibling = |ext: &str| {
            let p = PathBuf::from(format!("{name}.{ext}"));
            if p.exists() {
                format!("Some(include_bytes!({:?}))", p.canonicalize().unwrap())
            } else {
                "None".into()
            }
        };
        writeln!(
            code,
            "    Asset {{ path: {rel:?}, raw: include_bytes!({:?}), gz: {}, br: {} }},",
            f.canonicalize().unwrap(),
            sibling("gz"),
            sibling("br")
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("dashboard_assets.rs");
    std::fs::write(out, code).unwrap();
}
