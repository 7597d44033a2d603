//! Checks on the repository rather than on behaviour: the committed SDL is the one
//! the code serves.

mod schema;
