//! Checks on the repository rather than on behaviour: the committed SDL is the one
//! the code serves, `src/` keeps the layers that `src/lib.rs` lists, and the
//! documents the code points at exist and place every file.

mod docs;
mod image;
mod layers;
mod schema;

use std::path::{Path, PathBuf};

/// Every file below `dir` whose name ends in `.<ext>` for one of `exts`, sorted;
/// build output (`target/`) and installed packages are not the repository's.
fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "target" && n != "node_modules")
                {
                    todo.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| exts.iter().any(|x| e == *x))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
