//! placeholder: the axum server (being written)
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let _ = config;
    Ok(())
}
