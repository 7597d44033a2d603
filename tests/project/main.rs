//! Checks on the repository rather than on behaviour: the committed SDL is the one
//! the code serves, and `src/` keeps the layers that `src/lib.rs` lists.

mod layers;
mod schema;
