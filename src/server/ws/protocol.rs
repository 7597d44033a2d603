//! The messages of the two WebSocket subprotocols, parsed strictly and written by
//! hand: `graphql-transport-ws` (the graphql-ws library's PROTOCOL.md) and the
//! legacy `graphql-ws` of Apollo's subscriptions-transport-ws. A frame that is not
//! one of a protocol's messages is a [`BadMessage`], never a panic.

use serde_json::{json, Map, Value};

/// The negotiated subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// `graphql-ws`, subscriptions-transport-ws's protocol (Apollo's legacy clients).
    Legacy,
}

impl Protocol {
    pub(crate) const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub(crate) const LEGACY: &'static str = "graphql-ws";

    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => Self::TRANSPORT_WS,
            Protocol::Legacy => Self::LEGACY,
        }
    }

    /// The first protocol of `offered` (a `Sec-WebSocket-Protocol` list) that is
    /// ours; `graphql-transport-ws` when none is offered at all.
    pub(crate) fn negotiate<'a>(
        offered: impl IntoIterator<Item = &'a str>,
    ) -> Result<Protocol, ()> {
        let mut any = false;
        for name in offered {
            any = true;
            let name = name.trim();
            if name.eq_ignore_ascii_case(Self::TRANSPORT_WS) {
                return Ok(Protocol::TransportWs);
            }
            if name.eq_ignore_ascii_case(Self::LEGACY) {
                return Ok(Protocol::Legacy);
            }
        }
        if any {
            Err(())
        } else {
            Ok(Protocol::TransportWs)
        }
    }
}

/// A frame that is none of the protocol's messages, with a short reason.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadMessage(pub(crate) String);

/// A message from the client.
#[derive(Debug)]
pub(crate) enum ClientMessage {
    /// `connection_init`, with the `Authorization` its payload carries, if any.
    Init {
        authorization: Option<Authorization>,
    },
    /// `subscribe` (`start` in the legacy protocol).
    Subscribe {
        id: String,
        request: Box<async_graphql::Request>,
    },
    /// `complete` (`stop`).
    Complete {
        id: String,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong,
    /// Legacy `connection_terminate`.
    Terminate,
}

/// An `Authorization` entry of a `connection_init` payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Authorization {
    Value(String),
    /// Present but not a string: refused like a wrong key.
    NotAString,
}

impl ClientMessage {
    pub(crate) fn parse(protocol: Protocol, text: &str) -> Result<ClientMessage, BadMessage> {
        let bad = |m: &str| BadMessage(m.to_string());
        let value: Value =
            serde_json::from_str(text).map_err(|_| bad("Invalid message received: not JSON"))?;
        let Value::Object(mut message) = value else {
            return Err(bad("Invalid message received: not a JSON object"));
        };
        let Some(Value::String(ty)) = message.get("type") else {
            return Err(bad("Invalid message received: no string `type`"));
        };
        let ty = ty.clone();
        let legacy = protocol == Protocol::Legacy;
        match ty.as_str() {
            "connection_init" => {
                let payload = optional_object(&mut message, "payload")?;
                Ok(ClientMessage::Init {
                    authorization: payload.as_ref().and_then(authorization),
                })
            }
            "subscribe" if !legacy => subscribe(&mut message),
            "start" if legacy => subscribe(&mut message),
            "complete" if !legacy => Ok(ClientMessage::Complete { id: id(&message)? }),
            "stop" if legacy => Ok(ClientMessage::Complete { id: id(&message)? }),
            "ping" if !legacy => Ok(ClientMessage::Ping {
                payload: optional_object(&mut message, "payload")?.map(Value::Object),
            }),
            "pong" if !legacy => {
                optional_object(&mut message, "payload")?;
                Ok(ClientMessage::Pong)
            }
            "connection_terminate" if legacy => Ok(ClientMessage::Terminate),
            _ => Err(BadMessage(format!(
                "Invalid message received: unknown type {:?}",
                clip(&ty, 40)
            ))),
        }
    }
}

fn optional_object(
    message: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, BadMessage> {
    match message.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(BadMessage(format!(
            "Invalid message received: `{field}` must be an object"
        ))),
    }
}

fn id(message: &Map<String, Value>) -> Result<String, BadMessage> {
    match message.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(BadMessage(
            "Invalid message received: `id` must be a non-empty string".to_string(),
        )),
    }
}

fn subscribe(message: &mut Map<String, Value>) -> Result<ClientMessage, BadMessage> {
    let id = id(message)?;
    let bad = |m: &str| BadMessage(format!("Invalid message received: {m}"));
    let Some(payload) = optional_object(message, "payload")? else {
        return Err(bad("`payload` must be an object"));
    };
    if !matches!(payload.get("query"), Some(Value::String(_))) {
        return Err(bad("`payload.query` must be a string"));
    }
    for (field, ok) in [
        (
            "variables",
            &(|v: &Value| v.is_object()) as &dyn Fn(&Value) -> bool,
        ),
        ("extensions", &|v: &Value| v.is_object()),
        ("operationName", &|v: &Value| v.is_string()),
    ] {
        if payload.get(field).is_some_and(|v| !v.is_null() && !ok(v)) {
            return Err(bad(&format!("`payload.{field}` has the wrong type")));
        }
    }
    let request: async_graphql::Request = serde_json::from_value(Value::Object(payload))
        .map_err(|_| bad("`payload` is not a GraphQL request"))?;
    Ok(ClientMessage::Subscribe {
        id,
        request: Box::new(request),
    })
}

/// `Authorization` (or `authorization`) of an init payload, also inside `headers`
/// as Apollo's clients send it.
fn authorization(payload: &Map<String, Value>) -> Option<Authorization> {
    let find = |map: &Map<String, Value>| {
        map.get("Authorization")
            .or_else(|| map.get("authorization"))
            .cloned()
    };
    let found = find(payload).or_else(|| match payload.get("headers") {
        Some(Value::Object(headers)) => find(headers),
        _ => None,
    })?;
    Some(match found {
        Value::String(s) => Authorization::Value(s),
        _ => Authorization::NotAString,
    })
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Server messages, as text frames.
impl Protocol {
    pub(crate) fn ack(self) -> String {
        r#"{"type":"connection_ack"}"#.to_string()
    }

    /// The server's keep-alive: `ping` (answered with `pong`), or legacy `ka`.
    pub(crate) fn keep_alive(self) -> String {
        match self {
            Protocol::TransportWs => r#"{"type":"ping"}"#.to_string(),
            Protocol::Legacy => r#"{"type":"ka"}"#.to_string(),
        }
    }

    pub(crate) fn pong(self, payload: Option<Value>) -> String {
        match payload {
            Some(payload) => json!({ "type": "pong", "payload": payload }).to_string(),
            None => r#"{"type":"pong"}"#.to_string(),
        }
    }

    /// A result; `payload` is serialized JSON (an execution result).
    pub(crate) fn next(self, id: &str, payload: &str) -> String {
        let ty = match self {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        format!(
            r#"{{"type":"{ty}","id":{},"payload":{payload}}}"#,
            Value::from(id)
        )
    }

    /// The operation failed before it ran; `errors` is a JSON array of GraphQL
    /// errors. No `complete` follows.
    pub(crate) fn error(self, id: &str, errors: &Value) -> String {
        json!({ "type": "error", "id": id, "payload": errors }).to_string()
    }

    pub(crate) fn complete(self, id: &str) -> String {
        json!({ "type": "complete", "id": id }).to_string()
    }

    /// Legacy only: the server refuses the connection or a message, without
    /// closing (the protocol has no close codes).
    pub(crate) fn connection_error(self, message: &str, code: Option<&str>) -> String {
        let mut payload = json!({ "message": message });
        if let Some(code) = code {
            payload["extensions"] = json!({ "code": code });
        }
        json!({ "type": "connection_error", "payload": payload }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientMessage, BadMessage> {
        ClientMessage::parse(Protocol::TransportWs, text)
    }

    #[test]
    fn negotiates_ours_and_defaults_to_transport_ws() {
        assert_eq!(Protocol::negotiate([]), Ok(Protocol::TransportWs));
        assert_eq!(Protocol::negotiate(["graphql-ws"]), Ok(Protocol::Legacy));
        assert_eq!(
            Protocol::negotiate(["x", "graphql-transport-ws", "graphql-ws"]),
            Ok(Protocol::TransportWs)
        );
        assert_eq!(Protocol::negotiate(["mqtt"]), Err(()));
    }

    #[test]
    fn reads_the_authorization_of_an_init_payload() {
        let auth = |text: &str| match parse(text).unwrap() {
            ClientMessage::Init { authorization } => authorization,
            other => panic!("{other:?}"),
        };
        let bearer = Some(Authorization::Value("Bearer k".into()));
        assert_eq!(auth(r#"{"type":"connection_init"}"#), None);
        assert_eq!(auth(r#"{"type":"connection_init","payload":null}"#), None);
        assert_eq!(
            auth(r#"{"type":"connection_init","payload":{"Authorization":"Bearer k"}}"#),
            bearer
        );
        assert_eq!(
            auth(r#"{"type":"connection_init","payload":{"authorization":"Bearer k"}}"#),
            bearer
        );
        assert_eq!(
            auth(
                r#"{"type":"connection_init","payload":{"headers":{"Authorization":"Bearer k"}}}"#
            ),
            bearer
        );
        assert_eq!(
            auth(r#"{"type":"connection_init","payload":{"Authorization":7}}"#),
            Some(Authorization::NotAString)
        );
    }

    #[test]
    fn refuses_what_the_protocol_does_not_define() {
        for text in [
            "",
            "not json",
            "[]",
            "17",
            r#"{"id":"1"}"#,
            r#"{"type":7}"#,
            r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#,
            r#"{"type":"connection_init","payload":"x"}"#,
            r#"{"type":"subscribe","payload":{"query":"{a}"}}"#,
            r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#,
            r#"{"type":"subscribe","id":1,"payload":{"query":"{a}"}}"#,
            r#"{"type":"subscribe","id":"1"}"#,
            r#"{"type":"subscribe","id":"1","payload":{}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":1}}"#,
            r#"{"type":"complete"}"#,
            r#"{"type":"ping","payload":1}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn reads_a_subscribe_and_a_legacy_start() {
        let text = r#"{"type":"subscribe","id":"a","payload":{"query":"{ x }","variables":{"n":1},"operationName":null}}"#;
        match parse(text).unwrap() {
            ClientMessage::Subscribe { id, request } => {
                assert_eq!(id, "a");
                assert_eq!(request.query, "{ x }");
            }
            other => panic!("{other:?}"),
        }
        let legacy = r#"{"type":"start","id":"b","payload":{"query":"{ x }"}}"#;
        assert!(matches!(
            ClientMessage::parse(Protocol::Legacy, legacy),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(ClientMessage::parse(Protocol::Legacy, r#"{"type":"ping"}"#).is_err());
    }

    #[test]
    fn writes_messages_with_escaped_ids() {
        let p = Protocol::TransportWs;
        let next: Value = serde_json::from_str(&p.next("a\"b", r#"{"data":1}"#)).unwrap();
        assert_eq!(
            next,
            json!({"type":"next","id":"a\"b","payload":{"data":1}})
        );
        let data: Value =
            serde_json::from_str(&Protocol::Legacy.next("1", r#"{"data":1}"#)).unwrap();
        assert_eq!(data["type"], "data");
        assert_eq!(clip("héllo", 2), "h");
    }
}
