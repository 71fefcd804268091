//! The Rust codec against fixed bytes written by hand from docs/protocol.md
//! (`web-client/test/protocol-vectors.json`, which the TypeScript codec is
//! checked against too): a round trip through one codec cannot catch a field
//! that both of its directions misname, nor a width or a type the other side
//! does not read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Number, Value};
use transport::codec;
use transport::protocol::{ClientMessage, ServerMessage};

const VECTORS: &str = include_str!("../../web-client/test/protocol-vectors.json");

struct Vector {
    name: String,
    bytes: Vec<u8>,
    message: Value,
}

fn vectors(side: &str) -> Vec<Vector> {
    let all: Value = serde_json::from_str(VECTORS).expect("the vectors are JSON");
    all[side]
        .as_array()
        .expect("a list of vectors")
        .iter()
        .map(|v| Vector {
            name: v["name"].as_str().unwrap().to_owned(),
            bytes: hex(v["hex"].as_str().unwrap()),
            message: v["message"].clone(),
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A MessagePack reader of its own (the subset the protocol uses), so that
/// what the server encodes is read by something other than its codec. Byte
/// strings become arrays of numbers, as the vectors write cells.
fn read(bytes: &mut &[u8]) -> Value {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        head
    }
    fn uint(bytes: &mut &[u8], n: usize) -> u64 {
        take(bytes, n)
            .iter()
            .fold(0, |acc, b| (acc << 8) | u64::from(*b))
    }
    fn string(bytes: &mut &[u8], n: usize) -> Value {
        Value::String(String::from_utf8(take(bytes, n).to_vec()).expect("UTF-8"))
    }
    fn map(bytes: &mut &[u8], n: usize) -> Value {
        let mut m = Map::new();
        for _ in 0..n {
            let Value::String(key) = read(bytes) else {
                panic!("a map key that is not a string")
            };
            let value = read(bytes);
            assert!(m.insert(key, value).is_none(), "a key twice");
        }
        Value::Object(m)
    }
    fn array(bytes: &mut &[u8], n: usize) -> Value {
        Value::Array((0..n).map(|_| read(bytes)).collect())
    }
    let tag = take(bytes, 1)[0];
    match tag {
        0x00..=0x7f => Value::from(tag),
        0x80..=0x8f => map(bytes, usize::from(tag & 0x0f)),
        0x90..=0x9f => array(bytes, usize::from(tag & 0x0f)),
        0xa0..=0xbf => string(bytes, usize::from(tag & 0x1f)),
        0xc0 => Value::Null,
        0xc2 => Value::Bool(false),
        0xc3 => Value::Bool(true),
        0xc4 => {
            let n = uint(bytes, 1) as usize;
            Value::Array(take(bytes, n).iter().map(|b| Value::from(*b)).collect())
        }
        0xcb => {
            let bits = uint(bytes, 8);
            Value::Number(Number::from_f64(f64::from_bits(bits)).expect("finite"))
        }
        0xcc => Value::from(uint(bytes, 1)),
        0xcd => Value::from(uint(bytes, 2)),
        0xce => Value::from(uint(bytes, 4)),
        0xcf => Value::from(uint(bytes, 8)),
        0xd0 => Value::from(i64::from(take(bytes, 1)[0] as i8)),
        0xd9 => {
            let n = uint(bytes, 1) as usize;
            string(bytes, n)
        }
        0xdc => {
            let n = uint(bytes, 2) as usize;
            array(bytes, n)
        }
        0xde => {
            let n = uint(bytes, 2) as usize;
            map(bytes, n)
        }
        0xe0..=0xff => Value::from(i64::from(tag as i8)),
        other => panic!("a MessagePack type the protocol does not use: {other:#04x}"),
    }
}

fn read_all(mut bytes: &[u8]) -> Value {
    let value = read(&mut bytes);
    assert!(bytes.is_empty(), "{} trailing bytes", bytes.len());
    value
}

#[test]
fn the_vectors_say_what_their_json_says() {
    for v in vectors("client").into_iter().chain(vectors("server")) {
        assert_eq!(read_all(&v.bytes), v.message, "{}", v.name);
    }
}

#[test]
fn the_server_decodes_every_client_vector() {
    let all = vectors("client");
    assert!(all.len() >= 8, "one vector per client message at least");
    for v in all {
        let decoded = codec::decode_client(&v.bytes)
            .unwrap_or_else(|e| panic!("{}: the server refuses it: {e}", v.name));
        let expected: ClientMessage = serde_json::from_value(v.message.clone()).unwrap();
        assert_eq!(decoded, expected, "{}", v.name);
    }
}

#[test]
fn the_server_encodes_every_server_vector_to_the_same_map() {
    let all = vectors("server");
    assert!(all.len() >= 11, "one vector per server message at least");
    for v in all {
        let message: ServerMessage = serde_json::from_value(v.message.clone())
            .unwrap_or_else(|e| panic!("{}: not a server message: {e}", v.name));
        // Key order and integer widths are the encoder's choice; the map is not.
        let encoded = codec::encode_server(&message).unwrap();
        assert_eq!(read_all(&encoded), v.message, "{}: as encoded", v.name);
        // And the bytes of the vector decode to the same message (the test
        // client, the bots and the fuzz checks decode with it).
        let decoded = codec::decode_server(&v.bytes)
            .unwrap_or_else(|e| panic!("{}: does not decode: {e}", v.name));
        assert_eq!(decoded, message, "{}: as decoded", v.name);
    }
}
