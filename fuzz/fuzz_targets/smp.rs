//! What the `firmware` handler reads from an MCU's serial line: the SMP console framing
//! (`FrameDecoder`), SMP packets (`Packet::decode`), their CBOR bodies (`Value::decode`), the
//! answers the client interprets (image list, slot info, upload offset, echo) through
//! `smp::Client` over an in-memory line, and MCUboot images (`McubootImage::parse`).
//!
//! The first byte picks the parser. Checks beyond "no panic, no hang, bounded memory": a decoded
//! CBOR item encodes to bytes that decode to the same item; the framing decoder gives the same
//! packets and errors whether the bytes come at once or one by one, and no packet longer than
//! its limit; an image that parses lies within the input (and fills it unless trailing
//! erased flash is allowed).
#![no_main]

use std::io;
use std::sync::Once;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use update_components::firmware::cbor::Value;
use update_components::firmware::image::{ImageVersion, McubootImage, build_image};
use update_components::firmware::serial::{FrameDecoder, encode_packet};
use update_components::firmware::smp::{self, Client, Header, ImageSlot, Link, Op, Packet};

/// The largest packet the framing decoder takes here (the client's own limit is larger).
const MAX_PACKET: usize = 4096;

/// A serial line whose MCU answers every request with the fuzz input, in reads of up to 61 bytes
/// (a read of 0 is the deadline passing).
struct Line<'a> {
    answer: &'a [u8],
    sent: usize,
}

impl Link for Line<'_> {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sent += bytes.len();
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], _deadline: Instant) -> io::Result<usize> {
        let n = self.answer.len().min(buf.len()).min(61);
        buf[..n].copy_from_slice(&self.answer[..n]);
        self.answer = &self.answer[n..];
        Ok(n)
    }
}

fn frames(decoder: &mut FrameDecoder, data: &[u8], one_by_one: bool) -> Vec<String> {
    let mut out = Vec::new();
    if one_by_one {
        for b in data {
            decoder.feed(std::slice::from_ref(b), &mut out);
        }
    } else {
        decoder.feed(data, &mut out);
    }
    out.iter()
        .map(|r| match r {
            Ok(p) => {
                assert!(p.len() <= MAX_PACKET, "a {}-byte packet passed the {MAX_PACKET}-byte limit", p.len());
                if let Ok(packet) = Packet::decode(p) {
                    let _ = smp::parse_image_list(&packet.body);
                }
                format!("packet {p:?}")
            }
            Err(e) => format!("error {e:?}"),
        })
        .collect()
}

/// A framed answer to the client's first request (sequence 1).
fn answer(op: Op, group: u16, id: u8, body: Value) -> Vec<u8> {
    let header = Header { version: 1, op, flags: 0, len: 0, group, seq: 1, id };
    encode_packet(&Packet { header, body }.encode().expect("a small body"))
}

fn write_seeds() {
    let image = build_image(ImageVersion { major: 2, minor: 1, revision: 3, build: 0 }, &[0x5a; 300]);
    let parsed = McubootImage::parse(&image, false).expect("the seed image parses");
    let slots = [
        ImageSlot {
            slot: 0,
            version: "2.1.3".into(),
            hash: parsed.hash.to_vec(),
            bootable: true,
            confirmed: true,
            active: true,
            ..ImageSlot::default()
        },
        ImageSlot { slot: 1, version: "2.0.0".into(), hash: vec![7; 32], bootable: true, ..ImageSlot::default() },
    ];
    let list = smp::image_list_body(&slots);
    let list_packet = Packet {
        header: Header {
            version: 0,
            op: Op::ReadRsp,
            flags: 0,
            len: 0,
            group: smp::GROUP_IMAGE,
            seq: 1,
            id: smp::IMAGE_STATE,
        },
        body: list.clone(),
    }
    .encode()
    .expect("a small body");
    let mut framed = b"*** Booting MCUboot ***\r\n".to_vec();
    framed.extend_from_slice(&encode_packet(&list_packet));
    let upload = Value::map([("rc", Value::Uint(0)), ("off", Value::Uint(300)), ("match", Value::Bool(true))]);
    let slot_info = Value::map([(
        "images",
        Value::Array(vec![Value::map([("image", Value::Uint(0)), ("max_image_size", Value::Uint(65536))])]),
    )]);
    let error = Value::map([("err", Value::map([("group", Value::Uint(1)), ("rc", Value::Uint(8))]))]);
    let with = |mode: u8, bytes: &[u8]| [&[mode][..], bytes].concat();
    let client = |call: u8, bytes: Vec<u8>| [&[3u8, call][..], &bytes].concat();
    libupdate_fuzz::write_seeds(
        "smp",
        &[
            ("cbor-image-list", with(0, &list.encode())),
            ("cbor-upload", with(0, &upload.encode())),
            ("packet-image-list", with(1, &list_packet)),
            ("frames-image-list", with(2, &framed)),
            ("client-image-state", client(0, answer(Op::ReadRsp, smp::GROUP_IMAGE, smp::IMAGE_STATE, list))),
            ("client-slot-info", client(1, answer(Op::ReadRsp, smp::GROUP_IMAGE, smp::IMAGE_SLOT_INFO, slot_info))),
            ("client-upload", client(2, answer(Op::WriteRsp, smp::GROUP_IMAGE, smp::IMAGE_UPLOAD, upload))),
            ("client-error", client(0, answer(Op::ReadRsp, smp::GROUP_IMAGE, smp::IMAGE_STATE, error))),
            (
                "client-echo",
                client(
                    3,
                    answer(Op::WriteRsp, smp::GROUP_OS, smp::OS_ECHO, Value::map([("r", Value::Text("fuzz".into()))])),
                ),
            ),
            ("image", with(4, &image)),
        ],
    );
}

static SEEDS: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    SEEDS.call_once(write_seeds);
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 5 {
        0 => {
            if let Ok(v) = Value::decode(rest) {
                let bytes = v.encode();
                assert_eq!(Value::decode(&bytes).as_ref(), Ok(&v), "encode then decode changed the item");
                let _ = smp::parse_image_list(&v);
            }
        }
        1 => {
            if let Ok(p) = Packet::decode(rest) {
                let _ = smp::parse_image_list(&p.body);
                let again = p.encode().expect("a decoded body re-encodes within 65535 bytes");
                assert_eq!(Packet::decode(&again).map(|q| q.body).ok(), Some(p.body));
            }
        }
        2 => {
            let at_once = frames(&mut FrameDecoder::new(MAX_PACKET), rest, false);
            let one_by_one = frames(&mut FrameDecoder::new(MAX_PACKET), rest, true);
            assert_eq!(at_once, one_by_one, "the framing depends on how the bytes arrive");
        }
        3 => {
            let Some((&call, answer)) = rest.split_first() else { return };
            let mut client = Client::new(Line { answer, sent: 0 }, Duration::from_secs(1));
            let _ = match call % 4 {
                0 => client.image_state().map(|_| ()),
                1 => client.slot_size().map(|_| ()),
                2 => client.upload_chunk(0, &[1; 64], Some((300, &[2; 32]))).map(|_| ()),
                _ => client.echo("fuzz"),
            };
        }
        _ => {
            for trailing in [false, true] {
                if let Ok(img) = McubootImage::parse(rest, trailing) {
                    assert!(img.total_size <= rest.len(), "the image claims more bytes than it has");
                    assert!(trailing || img.total_size == rest.len(), "trailing bytes accepted");
                    let body_end = usize::from(img.header_size) + img.body_size as usize;
                    assert!(body_end <= img.total_size, "the body reaches past the image");
                }
            }
        }
    }
});
