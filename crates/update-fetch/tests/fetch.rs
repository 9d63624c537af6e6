//! update-fetch against a real HTTPS server on loopback (rustls, certificates from rcgen) that
//! injects faults: truncated bodies, 503s, ignored Range, wrong `Content-Range`, endless data;
//! and mutual TLS.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest;
use update_core::config::Secure;
use update_core::driver::NoProgress;
use update_core::{Error, ErrorKind};
use update_fetch::{FetchOptions, Fetcher, Plaintext, TlsSettings};

#[derive(Debug, Clone, Copy)]
enum Fault {
    Normal,
    /// Full Content-Length, then only this many bytes, then close.
    Truncate(usize),
    Status503,
    /// Answer a Range request with 200 and the whole body.
    IgnoreRange,
    /// Send the body twice.
    TooMuch,
    /// Answer a Range request with 206, the rest of the body and this header line (`""`: none)
    /// instead of the right `Content-Range`.
    ContentRange(&'static str),
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(names: &[&str], issuer: &CertifiedIssuer<'static, KeyPair>) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let p = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    (p.signed_by(&key, issuer).unwrap(), key)
}

struct World {
    pki: Pki,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    ca1: CertificateDer<'static>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki { dir };
    let ca1 = ca("test CA 1");
    let ca2 = ca("test CA 2");
    let (server, server_key) = leaf(&["localhost", "127.0.0.1"], &ca1);
    let (client, client_key) = leaf(&["device-1"], &ca1);
    let (stranger, stranger_key) = leaf(&["device-x"], &ca2);
    std::fs::write(pki.path("ca1.pem"), ca1.pem()).unwrap();
    std::fs::write(pki.path("ca2.pem"), ca2.pem()).unwrap();
    std::fs::write(pki.path("client.pem"), client.pem()).unwrap();
    std::fs::write(pki.path("client.key"), client_key.serialize_pem()).unwrap();
    std::fs::write(pki.path("stranger.pem"), stranger.pem()).unwrap();
    std::fs::write(pki.path("stranger.key"), stranger_key.serialize_pem()).unwrap();
    World { pki, server_cert: server.der().clone(), server_key: server_key.serialize_der(), ca1: ca1.der().clone() }
}

fn serve(w: &World, body: Arc<Vec<u8>>, faults: Vec<Fault>, mutual: bool) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(w.ca1.clone()).unwrap();
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(w.server_key.clone()));
    let config = Arc::new(builder.with_single_cert(vec![w.server_cert.clone()], key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let fault = faults.get(n).copied().unwrap_or(Fault::Normal);
            n += 1;
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { continue };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut range = None;
            let mut line = String::new();
            let mut ok = false;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    ok = true;
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().split_once('-').and_then(|(a, b)| {
                        Some((
                            a.parse::<usize>().ok()?,
                            if b.is_empty() { None } else { Some(b.parse::<usize>().ok()?) },
                        ))
                    });
                }
                line.clear();
            }
            drop(reader);
            if !ok {
                continue; // handshake failed (e.g. no client certificate)
            }
            seen.lock().unwrap().push(match range {
                None => "full".to_owned(),
                Some((a, None)) => format!("from {a}"),
                Some((a, Some(b))) => format!("{a}-{b}"),
            });
            let _ = respond(&mut tls, &body, range, fault);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Server { port, requests }
}

fn respond(
    out: &mut impl Write,
    body: &[u8],
    range: Option<(usize, Option<usize>)>,
    fault: Fault,
) -> std::io::Result<()> {
    let etag = "\"v1\"";
    let end = |r: (usize, Option<usize>)| r.1.map_or(body.len(), |b| (b + 1).min(body.len()));
    match (fault, range) {
        (Fault::Status503, _) => {
            write!(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        (Fault::TooMuch, _) => {
            write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\nETag: {etag}\r\n\r\n")?;
            out.write_all(body)?;
            out.write_all(body)
        }
        (Fault::IgnoreRange, _) | (_, None) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            let n = if let Fault::Truncate(n) = fault { n } else { body.len() };
            out.write_all(&body[..n])
        }
        (Fault::ContentRange(header), Some(r)) => {
            let part = &body[r.0..end(r)];
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n{header}ETag: {etag}\r\nConnection: close\r\n\r\n",
                part.len()
            )?;
            out.write_all(part)
        }
        (_, Some(r)) => {
            let (start, stop) = (r.0, end(r));
            let part = &body[start..stop];
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
                part.len(),
                stop - 1,
                body.len()
            )?;
            let n = if let Fault::Truncate(n) = fault { n.min(part.len()) } else { part.len() };
            out.write_all(&part[..n])
        }
    }
}

fn options(w: &World) -> FetchOptions {
    FetchOptions {
        tls: TlsSettings { server_ca: Some(w.pki.path("ca1.pem")), ..TlsSettings::default() },
        backoff: Duration::from_millis(5),
        attempts: 4,
        ..FetchOptions::default()
    }
}

fn body() -> Arc<Vec<u8>> {
    Arc::new((0..600_000u32).flat_map(|i| i.to_le_bytes()).collect())
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn get(f: &Fetcher, s: &Server, dest: &Path, b: &[u8]) -> update_core::Result<()> {
    f.download(
        &format!("https://localhost:{}/bundle", s.port),
        dest,
        b.len() as u64,
        Some((b.len() as u64, &sha(b))),
        &NoProgress,
    )
}

#[test]
fn a_cut_download_resumes_with_range() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::Truncate(100_000), Fault::Truncate(50_000), Fault::Normal], false);
    let dest = w.pki.path("out.bundle");
    get(&Fetcher::new(options(&w)).unwrap(), &s, &dest, &b).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *b);
    assert_eq!(*s.requests.lock().unwrap(), ["full", "from 100000", "from 150000"]);
    assert!(!w.pki.path("out.bundle.partial").exists());
}

#[test]
fn service_unavailable_is_retried() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::Status503, Fault::Status503, Fault::Normal], false);
    let dest = w.pki.path("out.bundle");
    get(&Fetcher::new(options(&w)).unwrap(), &s, &dest, &b).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *b);
}

#[test]
fn a_server_ignoring_range_restarts_cleanly() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::Truncate(70_000), Fault::IgnoreRange], false);
    let dest = w.pki.path("out.bundle");
    get(&Fetcher::new(options(&w)).unwrap(), &s, &dest, &b).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *b);
}

/// Wrong `Content-Range` lines for a 206 answering `Range: bytes=100000-` of the 2 400 000-byte
/// body, by class.
const WRONG_RANGES: &[(&str, &str)] = &[
    ("missing", ""),
    ("malformed", "Content-Range: bytes */2400000\r\n"),
    ("malformed", "Content-Range: items 100000-2399999/2400000\r\n"),
    ("malformed", "Content-Range: bytes 100000-2399999\r\n"),
    ("wrong start", "Content-Range: bytes 0-2399999/2400000\r\n"),
    ("wrong start", "Content-Range: bytes 100001-2399999/2400000\r\n"),
    ("wrong total", "Content-Range: bytes 100000-2400000/2400001\r\n"),
    ("wrong total", "Content-Range: bytes 100000-1999999/2000000\r\n"),
    ("short of the end", "Content-Range: bytes 100000-2399998/2400000\r\n"),
];

#[test]
fn a_wrong_content_range_appends_nothing_and_the_next_attempt_starts_over() {
    for (class, header) in WRONG_RANGES {
        let w = world();
        let b = body();
        let s = serve(&w, b.clone(), vec![Fault::Truncate(100_000), Fault::ContentRange(header)], false);
        let dest = w.pki.path("out.bundle");
        let partial = w.pki.path("out.bundle.partial");
        let once = Fetcher::new(FetchOptions { attempts: 2, ..options(&w) }).unwrap();
        let e = get(&once, &s, &dest, &b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Source, "{class}: {e}");
        assert!(e.to_string().contains("206 answer to Range: bytes=100000- refused"), "{class}: {e}");
        assert_eq!(std::fs::read(&partial).unwrap(), b[..100_000], "{class}: nothing appended");
        assert!(!w.pki.path("out.bundle.partial.json").exists(), "{class}: not resumed from again");
        // The next attempt asks for the whole file (the server answers it normally).
        get(&once, &s, &dest, &b).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), *b, "{class}");
        assert_eq!(*s.requests.lock().unwrap(), ["full", "from 100000", "full"], "{class}");
    }
}

#[test]
fn without_a_signed_length_the_first_answer_s_length_is_held_to() {
    for header in ["Content-Range: bytes 100000-2400009/2400010\r\n", "Content-Range: bytes 100000-199999/200000\r\n"] {
        let w = world();
        let b = body();
        let s = serve(&w, b.clone(), vec![Fault::Truncate(100_000), Fault::ContentRange(header)], false);
        let dest = w.pki.path("out.bundle");
        let f = Fetcher::new(FetchOptions { attempts: 2, ..options(&w) }).unwrap();
        let url = format!("https://localhost:{}/bundle", s.port);
        let e = f.download(&url, &dest, 1 << 34, None, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("the file is 2400000 bytes"), "{e}");
        assert_eq!(std::fs::metadata(w.pki.path("out.bundle.partial")).unwrap().len(), 100_000);
        // A server that does not know the length (`/*`) may still resume.
        let s = serve(
            &w,
            b.clone(),
            vec![Fault::Truncate(100_000), Fault::ContentRange("Content-Range: bytes 100000-2399999/*\r\n")],
            false,
        );
        f.download(&format!("https://localhost:{}/bundle", s.port), &dest, 1 << 34, None, &NoProgress).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), *b);
        assert_eq!(*s.requests.lock().unwrap(), ["full", "from 100000"]);
    }
}

#[test]
fn endless_data_is_cut_at_the_signed_length() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::TooMuch; 4], false);
    let dest = w.pki.path("out.bundle");
    let e = get(&Fetcher::new(options(&w)).unwrap(), &s, &dest, &b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(!dest.exists());
}

#[test]
fn a_download_that_never_completes_stays_partial_and_marked() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::Truncate(10_000); 8], false);
    let dest = w.pki.path("out.bundle");
    let e = get(&Fetcher::new(options(&w)).unwrap(), &s, &dest, &b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
    assert!(!dest.exists());
    assert_eq!(std::fs::metadata(w.pki.path("out.bundle.partial")).unwrap().len(), 40_000);
    let marker = std::fs::read_to_string(w.pki.path("out.bundle.partial.json")).unwrap();
    assert!(marker.contains("\"state\":\"partial\""), "{marker}");
}

#[test]
fn a_wrong_hash_is_refused_and_not_installed() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], false);
    let dest = w.pki.path("out.bundle");
    let f = Fetcher::new(options(&w)).unwrap();
    let e = f
        .download(
            &format!("https://localhost:{}/b", s.port),
            &dest,
            b.len() as u64,
            Some((b.len() as u64, &sha(b"other"))),
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Verification { .. }), "{e}");
    assert!(!dest.exists());
}

#[test]
fn mutual_tls() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], true);
    let dest = w.pki.path("out.bundle");
    // No client certificate: rejected.
    let e = get(&Fetcher::new(FetchOptions { attempts: 1, ..options(&w) }).unwrap(), &s, &dest, &b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
    // A certificate from another CA: rejected.
    let mut o = options(&w);
    o.secure = Secure::MutualTls;
    o.attempts = 1;
    o.tls.client_cert = Some(w.pki.path("stranger.pem"));
    o.tls.client_key = Some(w.pki.path("stranger.key"));
    assert!(get(&Fetcher::new(o).unwrap(), &s, &dest, &b).is_err());
    // The right one: served.
    let mut o = options(&w);
    o.secure = Secure::MutualTls;
    o.tls.client_cert = Some(w.pki.path("client.pem"));
    o.tls.client_key = Some(w.pki.path("client.key"));
    get(&Fetcher::new(o).unwrap(), &s, &dest, &b).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *b);
    // Mutual TLS without the files configured is refused up front.
    let o = FetchOptions { secure: Secure::MutualTls, ..options(&w) };
    assert!(Fetcher::new(o).unwrap_err().to_string().contains("client-cert"));
}

#[test]
fn a_server_from_an_untrusted_ca_is_refused() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], false);
    let mut o = options(&w);
    o.tls.server_ca = Some(w.pki.path("ca2.pem"));
    o.attempts = 1;
    let e = get(&Fetcher::new(o).unwrap(), &s, &w.pki.path("out"), &b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
}

#[test]
fn plain_http_needs_verified_content() {
    let w = world();
    let f = Fetcher::new(options(&w)).unwrap();
    assert!(f.get_bytes("http://127.0.0.1:9/x", 10).unwrap_err().to_string().contains("plain http"));
    let f =
        Fetcher::new(FetchOptions { plaintext: Plaintext::AllowVerifiedContent, attempts: 1, ..options(&w) }).unwrap();
    assert_eq!(f.get_bytes("http://127.0.0.1:9/x", 10).unwrap_err().kind(), ErrorKind::Source);
}

// ---- RemoteFile: reading in place by Range (streaming installs) ----

fn remote(f: &Fetcher, s: &Server, length: Option<u64>) -> update_fetch::RemoteFile {
    update_fetch::RemoteFile::new(f, &format!("https://localhost:{}/bundle", s.port), length, 1 << 30).unwrap()
}

#[test]
fn a_remote_file_reads_in_growing_windows_and_seeks() {
    use std::io::{Read, Seek, SeekFrom};
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], false);
    let f = Fetcher::new(options(&w)).unwrap();
    let mut r = remote(&f, &s, Some(b.len() as u64));
    // A head read asks for the first window only.
    let mut head = [0u8; 64];
    r.read_exact(&mut head).unwrap();
    assert_eq!(head[..], b[..64]);
    assert_eq!(*s.requests.lock().unwrap(), ["0-65535"]);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest[..], b[64..]);
    // 64 KiB, then four times more each time, then the rest at once.
    assert_eq!(*s.requests.lock().unwrap(), ["0-65535", "65536-327679", "327680-1376255", "from 1376256"]);
    let stats = r.stats();
    assert_eq!((stats.requests(), stats.bytes()), (4, b.len() as u64));
    // A seek starts over with a small window at the new place.
    r.seek(SeekFrom::Start(1_000_000)).unwrap();
    let mut some = [0u8; 10];
    r.read_exact(&mut some).unwrap();
    assert_eq!(some[..], b[1_000_000..1_000_010]);
    assert_eq!(s.requests.lock().unwrap().last().unwrap(), "1000000-1065535");
    // A short forward seek inside the answer reads on instead of asking again.
    r.seek(SeekFrom::Current(1000)).unwrap();
    r.read_exact(&mut some).unwrap();
    assert_eq!(some[..], b[1_001_010..1_001_020]);
    assert_eq!(s.requests.lock().unwrap().len(), 5);
    assert_eq!(r.seek(SeekFrom::End(-4)).unwrap(), b.len() as u64 - 4);
}

#[test]
fn a_cut_remote_read_resumes_where_it_stopped() {
    use std::io::Read;
    let w = world();
    let b = body();
    // The first window arrives whole, the second is cut twice.
    let s = serve(&w, b.clone(), vec![Fault::Normal, Fault::Truncate(1000), Fault::Truncate(0), Fault::Normal], false);
    let f = Fetcher::new(options(&w)).unwrap();
    let mut r = remote(&f, &s, None);
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, *b);
    let seen = s.requests.lock().unwrap().clone();
    assert_eq!(seen[..4], ["0-65535", "65536-327679", "66536-1115111", "from 66536"], "{seen:?}");
    assert_eq!(r.length(), Some(b.len() as u64), "learned from the first Content-Range");
}

#[test]
fn a_remote_server_without_range_support_is_read_from_the_start() {
    use std::io::Read;
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::IgnoreRange; 8], false);
    let f = Fetcher::new(options(&w)).unwrap();
    let mut r = remote(&f, &s, Some(b.len() as u64));
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, *b);
    assert_eq!(s.requests.lock().unwrap().len(), 1, "the whole body in one answer");
}

#[test]
fn read_ranges_asks_for_exactly_each_range_and_refuses_a_server_ignoring_range() {
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], false);
    let f = Fetcher::new(options(&w)).unwrap();
    let url = format!("https://localhost:{}/bundle", s.port);
    let ranges = [10..20u64, 70_000..200_000, 2_000_000..2_000_001];
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    f.read_ranges(&url, Some(b.len() as u64), &ranges, &mut |at, bytes| {
        match got.last_mut() {
            Some((start, v)) if *start + v.len() as u64 == at => v.extend_from_slice(bytes),
            _ => got.push((at, bytes.to_vec())),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(*s.requests.lock().unwrap(), ["10-19", "70000-199999", "2000000-2000000"], "one exact request each");
    for (r, (at, bytes)) in ranges.iter().zip(&got) {
        assert_eq!(
            (*at, &bytes[..]),
            (r.start, &b[usize::try_from(r.start).unwrap()..usize::try_from(r.end).unwrap()])
        );
    }
    // A server answering 200 to Range would send the whole file for every piece: refused.
    let s = serve(&w, b.clone(), vec![Fault::IgnoreRange; 8], false);
    let url = format!("https://localhost:{}/bundle", s.port);
    let e = f.read_ranges(&url, Some(b.len() as u64), &ranges, &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Source, "{e}");
    assert!(e.to_string().contains("ignores Range"), "{e}");
}

#[test]
fn readers_sharing_a_head_cache_fetch_the_head_once() {
    use std::io::Read;
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![], false);
    let f = Fetcher::new(options(&w)).unwrap();
    let url = format!("https://localhost:{}/bundle", s.port);
    let cache = update_fetch::HeadCache::default();
    for _ in 0..3 {
        let mut r = f.open_stream_cached(&url, Some(b.len() as u64), 1 << 30, &cache).unwrap();
        let mut head = vec![0u8; 1000];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head[..], b[..1000]);
    }
    assert_eq!(*s.requests.lock().unwrap(), ["0-65535"], "the second and third readers took the head from memory");
}

#[test]
fn wrong_content_ranges_are_never_used() {
    use std::io::Read;
    for header in [
        "",
        "Content-Range: bytes 1-65536/2400000\r\n",
        "Content-Range: bytes 0-65536/2400000\r\n",
        "Content-Range: bytes 0-65535/2400001\r\n",
        "Content-Range: bytes 0-65535/65535\r\n",
        "Content-Range: items 0-65535/2400000\r\n",
    ] {
        let w = world();
        let b = body();
        let s = serve(&w, b.clone(), vec![Fault::ContentRange(header); 8], false);
        let f = Fetcher::new(options(&w)).unwrap();
        let mut r = remote(&f, &s, Some(b.len() as u64));
        let mut buf = [0u8; 16];
        let e = r.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("refused"), "{header:?}: {e}");
        assert_eq!(r.stats().bytes(), 0, "{header:?}: nothing was used");
    }
}

#[test]
fn a_remote_file_longer_than_signed_is_cut() {
    use std::io::Read;
    let w = world();
    let b = body();
    let s = serve(&w, b.clone(), vec![Fault::TooMuch; 8], false);
    let f = Fetcher::new(options(&w)).unwrap();
    // The server sends 200 with no length and the body twice: the signed length ends it.
    let mut r = remote(&f, &s, Some(b.len() as u64));
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, *b);
    assert!(matches!(
        update_fetch::RemoteFile::new(&f, "http://localhost/x", None, 10).unwrap_err(),
        Error::Source { .. }
    ));
}
