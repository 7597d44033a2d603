//! placeholder: the GraphQL schema (being written)
pub fn sdl() -> String {
    String::new()
}
