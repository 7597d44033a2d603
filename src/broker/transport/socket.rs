//! WebSocket connections to a broker's stream, the same for every dialect: the
//! URL scheme follows the REST base (`https` → `wss`), the handshake is bounded by
//! the connect timeout, and a connection that goes silent is treated as dead.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::broker::stream::StreamError;

/// Brokers ping every 10 s or so; nothing at all (not even a ping) for this long
/// means the connection is gone without a close, as after a NAT timeout.
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(35);

pub(crate) struct Socket {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// `http://host/base/v1` → `ws://host/base/v1`, `https` → `wss`.
pub(crate) fn ws_url(mut url: Url) -> Url {
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    // Both schemes are special and have a host, so this cannot fail.
    let _ = url.set_scheme(scheme);
    url
}

impl Socket {
    pub(crate) async fn connect(
        url: Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        timeout: Duration,
    ) -> Result<Socket, StreamError> {
        let mut request = ws_url(url)
            .as_str()
            .into_client_request()
            .map_err(|e| StreamError::Connect(e.to_string()))?;
        for (name, value) in headers {
            request.headers_mut().insert(name, value);
        }
        let handshake = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(timeout, handshake).await {
            Err(_) => Err(StreamError::Connect("handshake timed out".into())),
            Ok(Ok((inner, _))) => Ok(Socket { inner }),
            Ok(Err(tungstenite::Error::Http(response)))
                if matches!(
                    response.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) =>
            {
                Err(StreamError::Unauthorized)
            }
            Ok(Err(tungstenite::Error::Http(response))) => Err(StreamError::Connect(format!(
                "the broker answered the upgrade with {}",
                response.status()
            ))),
            Ok(Err(e)) => Err(StreamError::Connect(e.to_string())),
        }
    }

    pub(crate) async fn send_json(&mut self, value: &serde_json::Value) -> Result<(), StreamError> {
        self.inner
            .send(Message::text(value.to_string()))
            .await
            .map_err(|e| StreamError::Closed(e.to_string()))
    }

    /// The next data message, text or binary (Alpaca sends JSON in binary frames).
    /// Pings are answered by the library while reading. `Ok(None)`: closed.
    pub(crate) async fn next_data(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            let next = tokio::time::timeout(SILENCE_LIMIT, self.inner.next()).await;
            let message = match next {
                Err(_) => return Err(StreamError::Closed("silent for too long".into())),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(StreamError::Closed(e.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => return Ok(Some(text.as_bytes().to_vec())),
                Message::Binary(bytes) => return Ok(Some(bytes.to_vec())),
                Message::Close(_) => return Ok(None),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    pub(crate) fn into_items<T, F>(
        self,
        parse: F,
    ) -> futures::stream::BoxStream<'static, Result<T, StreamError>>
    where
        T: Send + 'static,
        F: FnMut(&[u8]) -> Result<Option<T>, StreamError> + Send + 'static,
    {
        futures::stream::unfold((self, parse), |(mut socket, mut parse)| async move {
            loop {
                match socket.next_data().await {
                    Ok(None) => return None,
                    Err(e) => return Some((Err(e), (socket, parse))),
                    Ok(Some(data)) => match parse(&data) {
                        Ok(None) => continue,
                        Ok(Some(item)) => return Some((Ok(item), (socket, parse))),
                        Err(e) => return Some((Err(e), (socket, parse))),
                    },
                }
            }
        })
        .boxed()
    }
}
