//! Allocation-free fast paths for the two hottest messages.
//!
//! A bot receives one `captured` per capture in its game, so at load most of
//! its frames are `captured` (and some `rejected`). Decoding those through
//! serde's internally tagged enums buffers every field into owned values;
//! [`peek`] instead walks the MessagePack map in place and pulls out the few
//! integers a bot needs. Anything else, or anything it does not fully
//! understand, is [`Fast::Other`] and goes through [`transport::codec`], so
//! the fast path can never accept what the real decoder would refuse in a way
//! that matters to the counts. Likewise [`encode_capture`] writes the one
//! message bots send at rate without going through serde.

use bytes::Bytes;
use transport::RejectReason;
use transport::codec::write_uint;

/// What [`peek`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// `captured{seq, cell, player}` (the score is not needed).
    Captured {
        /// Event sequence number.
        seq: u64,
        /// The cell, 0..=80.
        cell: u8,
        /// Its new owner.
        player: u8,
    },
    /// `rejected{cell, ref?, reason}`.
    Rejected {
        /// The cell as sent.
        cell: i64,
        /// The echoed `ref`.
        reference: Option<u32>,
        /// Why.
        reason: RejectReason,
    },
    /// Some other message (or one to leave to the full decoder).
    Other,
}

/// Encodes `capture{cell, ref}` exactly as `rmp_serde::to_vec_named` does.
pub fn encode_capture(cell: u8, reference: u32) -> Bytes {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(b"\x83\xa1t\xa7capture\xa4cell");
    write_uint(&mut out, u64::from(cell));
    out.extend_from_slice(b"\xa3ref");
    write_uint(&mut out, u64::from(reference));
    Bytes::from(out)
}

/// Looks at one frame; see the module docs.
pub fn peek(frame: &[u8]) -> Fast {
    peek_inner(frame).unwrap_or(Fast::Other)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Captured,
    Rejected,
    Unknown,
}

fn peek_inner(frame: &[u8]) -> Option<Fast> {
    let mut r = Reader { buf: frame, pos: 0 };
    let entries = r.map_len()?;
    let mut kind = None;
    let (mut seq, mut cell, mut player, mut reference, mut reason) = (None, None, None, None, None);
    for _ in 0..entries {
        let key = r.str()?;
        match key {
            b"t" => {
                kind = Some(match r.str()? {
                    b"captured" => Kind::Captured,
                    b"rejected" => Kind::Rejected,
                    _ => return None,
                });
            }
            b"seq" => seq = Some(r.int()?),
            b"cell" => cell = Some(r.int()?),
            b"player" => player = Some(r.int()?),
            b"ref" => {
                if r.peek_byte()? == 0xc0 {
                    r.pos += 1;
                } else {
                    reference = Some(u32::try_from(r.int()?).ok()?);
                }
            }
            b"reason" => {
                reason = Some(match r.str()? {
                    b"taken" => RejectReason::Taken,
                    b"not_active" => RejectReason::NotActive,
                    b"out_of_range" => RejectReason::OutOfRange,
                    _ => return None,
                });
            }
            _ => r.skip(0)?,
        }
    }
    if r.pos != frame.len() {
        return None;
    }
    match kind.unwrap_or(Kind::Unknown) {
        Kind::Captured => Some(Fast::Captured {
            seq: u64::try_from(seq?).ok()?,
            cell: u8::try_from(cell?).ok().filter(|c| *c < 81)?,
            player: u8::try_from(player?).ok().filter(|p| *p < 8)?,
        }),
        Kind::Rejected => Some(Fast::Rejected {
            cell: i64::try_from(cell?).ok()?,
            reference,
            reason: reason?,
        }),
        Kind::Unknown => None,
    }
}

/// A cursor over one MessagePack value.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek_byte(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.peek_byte()?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.bytes(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    fn map_len(&mut self) -> Option<u64> {
        match self.byte()? {
            b @ 0x80..=0x8f => Some(u64::from(b & 0x0f)),
            0xde => self.be(2),
            0xdf => self.be(4),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => u64::from(b & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return None,
        };
        self.bytes(usize::try_from(n).ok()?)
    }

    fn int(&mut self) -> Option<i128> {
        Some(match self.byte()? {
            b @ 0x00..=0x7f => i128::from(b),
            b @ 0xe0..=0xff => i128::from(b as i8),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            _ => return None,
        })
    }

    /// Skips one value of any type (nesting bounded, so hostile input cannot
    /// recurse deeply).
    fn skip(&mut self, depth: u8) -> Option<()> {
        if depth > 16 {
            return None;
        }
        let b = self.byte()?;
        let n = |r: &mut Self, len: usize| r.be(len).and_then(|v| usize::try_from(v).ok());
        match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0xa0..=0xbf => {
                self.bytes(usize::from(b & 0x1f))?;
            }
            0x90..=0x9f => self.skip_items(u64::from(b & 0x0f), depth)?,
            0x80..=0x8f => self.skip_items(2 * u64::from(b & 0x0f), depth)?,
            0xcc | 0xd0 => {
                self.bytes(1)?;
            }
            0xcd | 0xd1 => {
                self.bytes(2)?;
            }
            0xce | 0xd2 | 0xca => {
                self.bytes(4)?;
            }
            0xcf | 0xd3 | 0xcb => {
                self.bytes(8)?;
            }
            0xc4 | 0xd9 => {
                let len = n(self, 1)?;
                self.bytes(len)?;
            }
            0xc5 | 0xda => {
                let len = n(self, 2)?;
                self.bytes(len)?;
            }
            0xc6 | 0xdb => {
                let len = n(self, 4)?;
                self.bytes(len)?;
            }
            0xd4..=0xd8 => {
                self.bytes(1 + (1usize << (b - 0xd4)))?;
            }
            0xc7..=0xc9 => {
                let len = n(self, 1usize << (b - 0xc7))?;
                self.bytes(len.checked_add(1)?)?;
            }
            0xdc => {
                let len = self.be(2)?;
                self.skip_items(len, depth)?;
            }
            0xdd => {
                let len = self.be(4)?;
                self.skip_items(len, depth)?;
            }
            0xde => {
                let len = self.be(2)?;
                self.skip_items(len * 2, depth)?;
            }
            0xdf => {
                let len = self.be(4)?;
                self.skip_items(len * 2, depth)?;
            }
            0xc1 => return None,
        }
        Some(())
    }

    fn skip_items(&mut self, count: u64, depth: u8) -> Option<()> {
        for _ in 0..count {
            self.skip(depth + 1)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use transport::codec;
    use transport::protocol::{ClientMessage, Number, ServerMessage};

    #[test]
    fn capture_encoding_matches_serde() {
        for (cell, reference) in [
            (0u8, 0u32),
            (80, 127),
            (40, 128),
            (7, 300),
            (1, 70_000),
            (2, u32::MAX),
        ] {
            let fast = encode_capture(cell, reference);
            let serde = codec::encode(&ClientMessage::Capture {
                cell: i64::from(cell),
                reference: Some(reference),
            })
            .unwrap();
            assert_eq!(fast, serde, "cell {cell} ref {reference}");
        }
    }

    #[test]
    fn captured_and_rejected_are_read_in_place() {
        let m = ServerMessage::Captured {
            seq: 1 << 40,
            cell: 80,
            player: 7,
            score: 300,
        };
        let bytes = codec::encode(&m).unwrap();
        assert_eq!(
            peek(&bytes),
            Fast::Captured {
                seq: 1 << 40,
                cell: 80,
                player: 7
            }
        );
        for (reference, reason) in [
            (Some(9), RejectReason::Taken),
            (None, RejectReason::NotActive),
            (Some(u32::MAX), RejectReason::OutOfRange),
        ] {
            let m = ServerMessage::Rejected {
                cell: -5,
                reference,
                reason,
            };
            let bytes = codec::encode(&m).unwrap();
            assert_eq!(
                peek(&bytes),
                Fast::Rejected {
                    cell: -5,
                    reference,
                    reason
                }
            );
        }
    }

    #[derive(Serialize)]
    struct Future<'a> {
        t: &'a str,
        extra: (
            Vec<u8>,
            f64,
            Option<&'a str>,
            std::collections::BTreeMap<&'a str, i8>,
        ),
        seq: u64,
        cell: u8,
        player: u8,
        score: u32,
        #[serde(with = "serde_bytes_shim")]
        blob: Vec<u8>,
    }

    mod serde_bytes_shim {
        pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn unknown_keys_of_any_type_are_skipped() {
        let m = Future {
            t: "captured",
            extra: (
                vec![1, 2, 200],
                -1.5,
                None,
                [("k", -3)].into_iter().collect(),
            ),
            seq: 3,
            cell: 4,
            player: 5,
            score: 6,
            blob: vec![0; 300],
        };
        let bytes = rmp_serde_shim(&m);
        assert_eq!(
            peek(&bytes),
            Fast::Captured {
                seq: 3,
                cell: 4,
                player: 5
            }
        );
    }

    fn rmp_serde_shim<T: Serialize>(v: &T) -> Vec<u8> {
        codec::encode(v).unwrap().to_vec()
    }

    #[test]
    fn anything_else_goes_to_the_full_decoder() {
        let others = [
            ServerMessage::Pong {
                ts: Number::Unsigned(1),
                server_ms: 2,
            },
            ServerMessage::Presence {
                seq: 1,
                player: 0,
                connected: true,
            },
        ];
        for m in others {
            assert_eq!(peek(&codec::encode(&m).unwrap()), Fast::Other);
        }
        let good = codec::encode(&ServerMessage::Captured {
            seq: 1,
            cell: 2,
            player: 3,
            score: 4,
        })
        .unwrap();
        // Every truncation, and trailing garbage, is refused rather than misread.
        for cut in 0..good.len() {
            assert_eq!(peek(&good[..cut]), Fast::Other, "cut at {cut}");
        }
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(peek(&long), Fast::Other);
        // Out-of-range values are left to the full decoder too.
        #[derive(Serialize)]
        struct Bad<'a> {
            t: &'a str,
            seq: u64,
            cell: u16,
            player: u8,
        }
        let bad = codec::encode(&Bad {
            t: "captured",
            seq: 1,
            cell: 81,
            player: 0,
        })
        .unwrap();
        assert_eq!(peek(&bad), Fast::Other);
        assert_eq!(peek(b"\xdf\xff\xff\xff\xff"), Fast::Other);
        assert_eq!(peek(b"\x81\xa1x\xdd\xff\xff\xff\xff"), Fast::Other);
    }
}
