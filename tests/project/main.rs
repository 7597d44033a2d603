//! Checks on the repository rather than on behaviour: the committed SDL is the one
//! the code serves, `src/` keeps the layers that `src/lib.rs` lists, and the
//! documents the code points at exist and place every file.

mod docs;
mod layers;
mod schema;
