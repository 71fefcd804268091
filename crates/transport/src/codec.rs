//! Bytes in, message out: the pure MessagePack codec.
//!
//! The socket loop in [`session`](crate::session) wraps this; nothing here
//! touches I/O, so the codec is tested (and fuzzed) on plain byte slices.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::TransportError;
use crate::protocol::{ClientMessage, ServerMessage};

/// Encodes any message as one MessagePack map with string keys.
pub fn encode<T: Serialize>(message: &T) -> Result<Bytes, TransportError> {
    rmp_serde::to_vec_named(message)
        .map(Bytes::from)
        .map_err(|e| TransportError::Encode(e.to_string()))
}

/// Encodes a server message. Encoding our own types cannot fail in practice;
/// should it, the error is logged by the caller and the message dropped.
pub fn encode_server(message: &ServerMessage) -> Result<Bytes, TransportError> {
    encode(message)
}

/// Deepest nesting of arrays and maps accepted in a frame (a `joined`
/// snapshot nests 4 levels: message, game, players, player).
pub const MAX_DEPTH: usize = 32;

/// Decodes exactly one MessagePack value from `bytes`; trailing bytes are an
/// error, as the protocol puts one value in each frame.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TransportError> {
    let mut rest = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    // rmp-serde's default (1024) lets a 4 KiB frame of nested arrays recurse
    // deep enough to overflow a task's stack through serde's buffering of
    // internally tagged enums; no protocol message nests beyond a few levels.
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| TransportError::Decode(e.to_string()))?;
    drop(de);
    if !rest.is_empty() {
        return Err(TransportError::Decode(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(value)
}

/// Decodes a client's frame: one map with string keys whose `t` is a string
/// (protocol §1), then the message it names.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, TransportError> {
    decode::<Envelope>(bytes)?;
    decode(bytes)
}

/// The shape every client message must have. serde's internally tagged
/// enums alone also take an integer `t` as a variant index (`{t: 5}` was
/// read as `leave`), an array instead of a map, and integer keys as field
/// indices; such frames are malformed, not some other message.
struct Envelope;

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with string keys and a string `t`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut tagged = false;
        while let Some(Text(key)) = map.next_key::<Text>()? {
            if key {
                map.next_value::<Text>()?;
                tagged = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if tagged {
            Ok(Envelope)
        } else {
            Err(de::Error::missing_field("t"))
        }
    }
}

/// A string and nothing else (not a number, not binary); `true` if it is "t".
struct Text(bool);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(v == "t"))
    }
}

/// Decodes a server's frame (the client side: bots and tests).
pub fn decode_server(bytes: &[u8]) -> Result<ServerMessage, TransportError> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, Number};

    #[test]
    fn client_messages_round_trip() {
        let all = vec![
            ClientMessage::Create {
                name: "ada".into(),
                max_players: Some(4),
                duration_ms: None,
                public: None,
            },
            ClientMessage::Join {
                game: "g".into(),
                name: "bob".into(),
            },
            ClientMessage::Resume {
                game: "g".into(),
                token: "t".into(),
            },
            ClientMessage::Start {},
            ClientMessage::Capture {
                cell: 80,
                reference: Some(7),
            },
            ClientMessage::Capture {
                cell: -1,
                reference: None,
            },
            ClientMessage::Leave {},
            ClientMessage::Ping {
                ts: Number::Float(1.5),
            },
            ClientMessage::Ping {
                ts: Number::Unsigned(12),
            },
            ClientMessage::Ping {
                ts: Number::Signed(-3),
            },
        ];
        for m in all {
            let bytes = encode(&m).unwrap();
            assert_eq!(decode_client(&bytes).unwrap(), m);
        }
    }

    #[derive(Serialize)]
    struct Extra<'a> {
        t: &'a str,
        cell: u8,
        future_field: &'a str,
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let bytes = encode(&Extra {
            t: "capture",
            cell: 3,
            future_field: "x",
        })
        .unwrap();
        assert_eq!(
            decode_client(&bytes).unwrap(),
            ClientMessage::Capture {
                cell: 3,
                reference: None
            }
        );
        let bytes = encode(&Extra {
            t: "start",
            cell: 3,
            future_field: "x",
        })
        .unwrap();
        assert_eq!(decode_client(&bytes).unwrap(), ClientMessage::Start {});
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\xc1",
            b"\x81\xa1t\xa4nope",
            b"\x93\x01\x02\x03",
            b"\xa5hello",
        ] {
            assert!(decode_client(bad).is_err(), "{bad:?}");
        }
        let mut two = encode(&ClientMessage::Start {}).unwrap().to_vec();
        two.extend_from_slice(&two.clone());
        assert!(decode_client(&two).is_err(), "two values in one frame");
        // Wrong field type: cell as a string.
        #[derive(Serialize)]
        struct WrongType<'a> {
            t: &'a str,
            cell: &'a str,
        }
        let bytes = encode(&WrongType {
            t: "capture",
            cell: "3",
        })
        .unwrap();
        assert!(decode_client(&bytes).is_err());
    }

    #[test]
    fn only_a_map_with_string_keys_and_a_string_t_is_a_message() {
        // {t: 5}: an integer tag once selected variant 5, `leave`.
        let int_tag = [0x81, 0xa1, b't', 0x05];
        // ["leave"]: an array instead of a map.
        let array = [0x91, 0xa5, b'l', b'e', b'a', b'v', b'e'];
        // {t: "ping", 0: 9}: an integer key once named field 0, `ts`.
        let int_key = [0x82, 0xa1, b't', 0xa4, b'p', b'i', b'n', b'g', 0x00, 0x09];
        // {t: bin "start"}: binary is not a string.
        let bin_tag = [0x81, 0xa1, b't', 0xc4, 0x05, b's', b't', b'a', b'r', b't'];
        for bad in [&int_tag[..], &array, &int_key, &bin_tag] {
            assert!(decode_client(bad).is_err(), "{bad:?}");
        }
        // The same messages in the right shape.
        let start = [0x81, 0xa1, b't', 0xa5, b's', b't', b'a', b'r', b't'];
        assert_eq!(decode_client(&start).unwrap(), ClientMessage::Start {});
        let ping = [
            0x82, 0xa1, b't', 0xa4, b'p', b'i', b'n', b'g', 0xa2, b't', b's', 0x09,
        ];
        assert_eq!(
            decode_client(&ping).unwrap(),
            ClientMessage::Ping {
                ts: Number::Unsigned(9)
            }
        );
    }

    #[test]
    fn error_codes_are_snake_case_strings() {
        let m = ServerMessage::Error {
            code: ErrorCode::NotEnoughPlayers,
            message: "m".into(),
        };
        let bytes = encode(&m).unwrap();
        let needle = b"not_enough_players";
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
        assert_eq!(decode_server(&bytes).unwrap(), m);
    }
}
