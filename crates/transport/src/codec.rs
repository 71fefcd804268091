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
    if let ServerMessage::Captured {
        seq,
        cell,
        player,
        score,
    } = *message
    {
        return Ok(encode_captured(seq, cell, player, score));
    }
    encode(message)
}

/// `captured`, the event of nearly every delivery, written directly: the
/// same bytes as `rmp_serde::to_vec_named` (tested), without serde's ~2,700
/// instructions and the buffer's regrowth.
fn encode_captured(seq: u64, cell: u8, player: u8, score: u32) -> Bytes {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(b"\x85\xa1t\xa8captured\xa3seq");
    write_uint(&mut out, seq);
    out.extend_from_slice(b"\xa4cell");
    write_uint(&mut out, u64::from(cell));
    out.extend_from_slice(b"\xa6player");
    write_uint(&mut out, u64::from(player));
    out.extend_from_slice(b"\xa5score");
    write_uint(&mut out, u64::from(score));
    Bytes::from(out)
}

/// Appends an unsigned integer in its shortest MessagePack form (as rmp and
/// rmp-serde write it); the bots' hand-written captures use it too.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if let Ok(b) = u8::try_from(v) {
        out.extend_from_slice(&[0xcc, b]);
    } else if let Ok(h) = u16::try_from(v) {
        out.push(0xcd);
        out.extend_from_slice(&h.to_be_bytes());
    } else if let Ok(w) = u32::try_from(v) {
        out.push(0xce);
        out.extend_from_slice(&w.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
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
    if let Some(capture) = fast_capture(bytes) {
        return Ok(capture);
    }
    decode::<Envelope>(bytes)?;
    decode(bytes)
}

/// The one hot client message, `capture`, read in place: a map of exactly
/// `t: "capture"`, an integer `cell` and optionally `ref` (a `u32` or nil),
/// in any order, short (fixstr) keys, nothing after it. `None` for anything
/// else, which the general decoder then reads (and accepts or refuses) as
/// before, so this only ever answers what it would answer. The general path
/// costs ~4,000 instructions a capture (the tag check, then serde buffering
/// the map to find the tag); this one ~50.
fn fast_capture(bytes: &[u8]) -> Option<ClientMessage> {
    let (&head, mut rest) = bytes.split_first()?;
    let entries = match head {
        0x82 => 2,
        0x83 => 3,
        _ => return None,
    };
    let (mut tagged, mut cell, mut reference) = (false, None, None);
    for _ in 0..entries {
        match fixstr(&mut rest)? {
            b"t" if !tagged => {
                if fixstr(&mut rest)? != b"capture" {
                    return None;
                }
                tagged = true;
            }
            b"cell" if cell.is_none() => cell = Some(int(&mut rest)?),
            b"ref" if reference.is_none() => {
                reference = Some(if rest.first() == Some(&0xc0) {
                    rest = &rest[1..];
                    None
                } else {
                    Some(u32::try_from(int(&mut rest)?).ok()?)
                });
            }
            _ => return None,
        }
    }
    if !tagged || !rest.is_empty() {
        return None;
    }
    Some(ClientMessage::Capture {
        cell: cell?,
        reference: reference.flatten(),
    })
}

/// A fixstr (up to 31 bytes), advancing `rest` past it.
fn fixstr<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&head, tail) = rest.split_first()?;
    if head & 0xe0 != 0xa0 {
        return None;
    }
    let len = usize::from(head & 0x1f);
    let text = tail.get(..len)?;
    *rest = &tail[len..];
    Some(text)
}

/// Any MessagePack integer that fits an `i64`, advancing `rest` past it.
fn int(rest: &mut &[u8]) -> Option<i64> {
    let (&head, tail) = rest.split_first()?;
    let (value, used) = match head {
        0x00..=0x7f => (i64::from(head), 0),
        0xe0..=0xff => (i64::from(head as i8), 0),
        0xcc => (i64::from(*tail.first()?), 1),
        0xcd => (
            i64::from(u16::from_be_bytes(tail.get(..2)?.try_into().ok()?)),
            2,
        ),
        0xce => (
            i64::from(u32::from_be_bytes(tail.get(..4)?.try_into().ok()?)),
            4,
        ),
        0xcf => (
            i64::try_from(u64::from_be_bytes(tail.get(..8)?.try_into().ok()?)).ok()?,
            8,
        ),
        0xd0 => (i64::from(*tail.first()? as i8), 1),
        0xd1 => (
            i64::from(i16::from_be_bytes(tail.get(..2)?.try_into().ok()?)),
            2,
        ),
        0xd2 => (
            i64::from(i32::from_be_bytes(tail.get(..4)?.try_into().ok()?)),
            4,
        ),
        0xd3 => (i64::from_be_bytes(tail.get(..8)?.try_into().ok()?), 8),
        _ => return None,
    };
    *rest = &tail[used..];
    Some(value)
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

    /// The general decoder alone, as before the fast path.
    fn decode_client_slowly(bytes: &[u8]) -> Result<ClientMessage, TransportError> {
        decode::<Envelope>(bytes)?;
        decode(bytes)
    }

    #[test]
    fn captures_take_the_fast_path() {
        for m in [
            ClientMessage::Capture {
                cell: 80,
                reference: Some(70_000),
            },
            ClientMessage::Capture {
                cell: -1_000_000_000_000,
                reference: None,
            },
        ] {
            let bytes = encode(&m).unwrap();
            assert_eq!(fast_capture(&bytes), Some(m));
        }
        // The bots' and the browser's key order differ; nil ref is no ref.
        let nil_ref = [
            0x83, 0xa3, b'r', b'e', b'f', 0xc0, 0xa4, b'c', b'e', b'l', b'l', 0x05, 0xa1, b't',
            0xa7, b'c', b'a', b'p', b't', b'u', b'r', b'e',
        ];
        assert_eq!(
            fast_capture(&nil_ref),
            Some(ClientMessage::Capture {
                cell: 5,
                reference: None
            })
        );
    }

    /// Any map built from the capture's keys (and others), with values of
    /// any type, decodes the same with and without the fast path.
    mod fast_path_agrees {
        use proptest::prelude::*;

        use super::*;

        fn value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                any::<i64>().prop_map(|v| rmp_serde::to_vec(&v).unwrap()),
                any::<u64>().prop_map(|v| rmp_serde::to_vec(&v).unwrap()),
                (0u32..100).prop_map(|v| rmp_serde::to_vec(&v).unwrap()),
                Just(vec![0xc0]),
                Just(vec![0xc3]),
                any::<f64>().prop_map(|v| rmp_serde::to_vec(&v).unwrap()),
                prop_oneof![Just("capture"), Just("start"), Just("capturex"), Just("")]
                    .prop_map(|v| rmp_serde::to_vec(&v).unwrap()),
                proptest::collection::vec(any::<u8>(), 0..6),
            ]
        }

        fn key() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                Just(b"\xa1t".to_vec()),
                Just(b"\xa4cell".to_vec()),
                Just(b"\xa3ref".to_vec()),
                Just(b"\xd9\x01t".to_vec()),
                Just(b"\xa2ts".to_vec()),
                Just(vec![0x01]),
            ]
        }

        proptest! {
            #[test]
            fn same_answer(
                head in prop_oneof![Just(0x81u8), Just(0x82), Just(0x83), Just(0x84), Just(0x93)],
                entries in proptest::collection::vec((key(), value()), 0..5),
                trailing in proptest::collection::vec(any::<u8>(), 0..2),
            ) {
                let mut bytes = vec![head];
                for (k, v) in entries {
                    bytes.extend(k);
                    bytes.extend(v);
                }
                bytes.extend(trailing);
                let slow = decode_client_slowly(&bytes).ok();
                if let Some(fast) = fast_capture(&bytes) {
                    prop_assert_eq!(Some(fast), slow.clone(), "{:?}", bytes);
                }
                prop_assert_eq!(decode_client(&bytes).ok(), slow);
            }

            #[test]
            fn captured_is_written_as_serde_writes_it(
                seq in prop_oneof![any::<u64>(), 0u64..300],
                cell in any::<u8>(),
                player in any::<u8>(),
                score in prop_oneof![any::<u32>(), 0u32..70_000],
            ) {
                let m = ServerMessage::Captured { seq, cell, player, score };
                prop_assert_eq!(encode_server(&m).unwrap(), encode(&m).unwrap());
            }

            #[test]
            fn every_valid_capture(cell in any::<i64>(), reference in proptest::option::of(any::<u32>())) {
                let m = ClientMessage::Capture { cell, reference };
                let bytes = encode(&m).unwrap();
                prop_assert_eq!(fast_capture(&bytes), Some(m));
            }
        }
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
