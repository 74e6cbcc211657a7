//! TLS under the HTTP/1.1 connection code: rustls driven over the worker's monoio TCP stream.
//!
//! The handshake is per-connection async work on the worker that accepted the connection: the
//! ClientHello is read first (rustls' `Acceptor`), so the certificate can be chosen from its
//! server name and ALPN list, and fetched asynchronously when it is not ready yet (the ACME
//! manager answers from its own thread; the worker keeps serving other connections
//! meanwhile). After the handshake the connection code runs unchanged over [`TlsStream`],
//! which turns ciphertext on the socket into plaintext reads and plaintext writes into
//! records. Plain TCP connections never touch this module.
//!
//! The stream is kept as two halves sharing one rustls connection (`Rc<RefCell<_>>`, never
//! borrowed across an await), so an SSE stream can write while the connection code watches the
//! read side for the client going away, as it does over plain TCP.

use crate::conn::Transport;
use futures_util::future::LocalBoxFuture;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::server::{Acceptor, ServerConnection};
use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::sync::Arc;

pub use rustls;

/// What a ClientHello asks for, as far as choosing a certificate goes.
#[derive(Clone, Debug, Default)]
pub struct ClientHello {
    /// The SNI name, as the client sent it.
    pub server_name: Option<String>,
    /// The ALPN protocols offered, in the client's order.
    pub alpn: Vec<Vec<u8>>,
    /// Whether the client can take an ECDSA P-256 certificate, by autocert's rule (Go's
    /// `supportsECDSA`); one that cannot gets the RSA certificate.
    pub ecdsa: bool,
}

/// Go autocert's `supportsECDSA`: the signature algorithms (when sent) name an ECDSA scheme,
/// the groups (when sent) include P-256, and an ECDHE-ECDSA cipher suite is offered. The last
/// rule means a client offering TLS 1.3 suites only gets the RSA certificate, as from
/// PocketBase; browsers and the usual libraries offer TLS 1.2 suites too.
pub fn supports_ecdsa(hello: &rustls::server::ClientHello<'_>) -> bool {
    use rustls::{CipherSuite as C, NamedGroup, SignatureScheme as S};
    let schemes = hello.signature_schemes();
    let ecdsa_scheme = |s: &S| {
        matches!(
            s,
            S::ECDSA_SHA1_Legacy
                | S::ECDSA_NISTP256_SHA256
                | S::ECDSA_NISTP384_SHA384
                | S::ECDSA_NISTP521_SHA512
        )
    };
    if !schemes.is_empty() && !schemes.iter().any(ecdsa_scheme) {
        return false;
    }
    if let Some(groups) = hello.named_groups() {
        if !groups.contains(&NamedGroup::secp256r1) {
            return false;
        }
    }
    hello.cipher_suites().iter().any(|c| {
        matches!(
            c,
            C::TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
                | C::TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        )
    })
}

/// Picks the rustls configuration (and so the certificate) for each handshake.
pub trait CertSource: Send + Sync + 'static {
    /// The configuration to finish this handshake with; `None` refuses it (the connection is
    /// closed). The future runs on the worker that accepted the connection, so it must not
    /// block: slow work (issuing a certificate) happens elsewhere and is awaited.
    fn config_for(
        &self,
        hello: ClientHello,
    ) -> LocalBoxFuture<'static, Option<Arc<rustls::ServerConfig>>>;
}

/// One fixed configuration for every handshake (a certificate from files, a self-signed one).
pub struct FixedCert(pub Arc<rustls::ServerConfig>);

impl CertSource for FixedCert {
    fn config_for(
        &self,
        _: ClientHello,
    ) -> LocalBoxFuture<'static, Option<Arc<rustls::ServerConfig>>> {
        let config = self.0.clone();
        Box::pin(async move { Some(config) })
    }
}

/// TLS for a server: where its certificates come from.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<dyn CertSource>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// Ciphertext is read from the socket in pieces of this size: one TLS record at most (16 KiB
/// of plaintext plus framing), so what rustls decrypts from one read never exceeds its 16 KiB
/// received-plaintext limit while the previous plaintext is still unread.
const CIPHER_READ: usize = 16 * 1024 + 256;
/// Plaintext is handed to rustls in pieces of this size and each piece's records written
/// before the next: a 32 MiB response never sits in memory twice (once plain, once sealed).
const PLAIN_WRITE: usize = 64 * 1024;

/// Runs a server-side handshake on `tcp`. `None` when the client went away, spoke something
/// other than TLS, or `source` refused it.
pub(crate) async fn accept(mut tcp: TcpStream, source: &dyn CertSource) -> Option<TlsStream> {
    let mut acceptor = Acceptor::default();
    let mut buf: Vec<u8> = Vec::with_capacity(CIPHER_READ);
    let accepted = loop {
        buf.clear();
        let (res, b) = tcp.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            if acceptor.read_tls(&mut rest).is_err() {
                return None;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((_, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = tcp.write_all(out).await;
                return None;
            }
        }
    };
    let hello = {
        let h = accepted.client_hello();
        ClientHello {
            server_name: h.server_name().map(str::to_owned),
            alpn: h
                .alpn()
                .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                .unwrap_or_default(),
            ecdsa: supports_ecdsa(&h),
        }
    };
    let config = source.config_for(hello).await?;
    let mut conn = match accepted.into_connection(config) {
        Ok(conn) => conn,
        Err((_, mut alert)) => {
            let mut out = Vec::new();
            let _ = alert.write_all(&mut out);
            let _ = tcp.write_all(out).await;
            return None;
        }
    };
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        while conn.wants_write() {
            if conn.write_tls(&mut out).is_err() {
                return None;
            }
        }
        if !out.is_empty() {
            let (res, b) = tcp.write_all(out).await;
            out = b;
            out.clear();
            res.ok()?;
        }
        if !conn.is_handshaking() {
            break;
        }
        buf.clear();
        let (res, b) = tcp.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            if conn.read_tls(&mut rest).is_err() {
                return None;
            }
            if conn.process_new_packets().is_err() {
                // the alert rustls queued tells the client why
                let _ = conn.write_tls(&mut out);
                let _ = tcp.write_all(out).await;
                return None;
            }
        }
    }
    buf.clear();
    let (rd, wr) = tcp.into_split();
    let tls = Rc::new(RefCell::new(conn));
    Some(TlsStream {
        rd: TlsRead {
            io: rd,
            tls: tls.clone(),
            cipher: buf,
            used: 0,
            eof: false,
        },
        wr: TlsWrite { io: wr, tls, out },
    })
}

/// A server-side TLS connection over TCP, read and written with monoio's owned buffers.
pub struct TlsStream {
    rd: TlsRead,
    wr: TlsWrite,
}

impl TlsStream {
    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.rd.tls.borrow().alpn_protocol().map(<[u8]>::to_vec)
    }
}

/// The reading half: ciphertext from the socket in, plaintext out.
pub struct TlsRead {
    io: OwnedReadHalf<TcpStream>,
    tls: Rc<RefCell<ServerConnection>>,
    /// Ciphertext read but not yet taken by rustls, from `used` on.
    cipher: Vec<u8>,
    used: usize,
    eof: bool,
}

/// The writing half: plaintext in, records out to the socket.
pub struct TlsWrite {
    io: OwnedWriteHalf<TcpStream>,
    tls: Rc<RefCell<ServerConnection>>,
    /// Records waiting for the socket (reused between writes).
    out: Vec<u8>,
}

impl TlsRead {
    async fn read_into<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        loop {
            // 1. plaintext rustls already holds
            {
                let mut tls = self.tls.borrow_mut();
                let mut reader = tls.reader();
                match reader.fill_buf() {
                    Ok(data) => {
                        let n = data.len().min(buf.bytes_total());
                        // SAFETY: `write_ptr` points at `bytes_total` writable bytes of the
                        // caller's buffer, and `n` of them are initialised right here
                        unsafe {
                            std::ptr::copy_nonoverlapping(data.as_ptr(), buf.write_ptr(), n);
                            buf.set_init(n);
                        }
                        reader.consume(n);
                        // Ok(0) here is the peer's close_notify: a clean end of stream
                        return (Ok(n), buf);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            // 2. ciphertext already read but not yet given to rustls
            if self.used < self.cipher.len() {
                let mut tls = self.tls.borrow_mut();
                let mut rest = &self.cipher[self.used..];
                let taken = match tls.read_tls(&mut rest) {
                    Ok(n) => n,
                    Err(e) => return (Err(e), buf),
                };
                self.used += taken;
                if self.used == self.cipher.len() {
                    self.cipher.clear();
                    self.used = 0;
                }
                if let Err(e) = tls.process_new_packets() {
                    return (Err(io::Error::new(io::ErrorKind::InvalidData, e)), buf);
                }
                continue;
            }
            if self.eof {
                // rustls was told; it answers above with a clean end or UnexpectedEof
                return (Err(io::ErrorKind::UnexpectedEof.into()), buf);
            }
            // 3. more ciphertext from the socket
            let mut cipher = std::mem::take(&mut self.cipher);
            cipher.clear();
            cipher.reserve(CIPHER_READ);
            let (res, back) = self.io.read(cipher).await;
            self.cipher = back;
            self.used = 0;
            match res {
                Ok(0) => {
                    self.eof = true;
                    let _ = self.tls.borrow_mut().read_tls(&mut io::empty());
                }
                Ok(_) => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }
}

impl TlsWrite {
    /// Seals `data` and writes all of it; returns `data.len()`.
    async fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        for piece in data.chunks(PLAIN_WRITE) {
            {
                let mut tls = self.tls.borrow_mut();
                let mut piece = piece;
                while !piece.is_empty() {
                    let n = tls.writer().write(piece)?;
                    piece = &piece[n..];
                    while tls.wants_write() {
                        tls.write_tls(&mut self.out)?;
                    }
                    if n == 0 && !piece.is_empty() {
                        return Err(io::Error::other("TLS send buffer refused plaintext"));
                    }
                }
            }
            self.send().await?;
        }
        Ok(data.len())
    }

    /// Writes queued records (including any rustls queued while reading, e.g. a key update).
    async fn send(&mut self) -> io::Result<()> {
        {
            let mut tls = self.tls.borrow_mut();
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let (res, mut out) = self.io.write_all(out).await;
        out.clear();
        self.out = out;
        res.map(|_| ())
    }
}

impl AsyncReadRent for TlsRead {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        self.read_into(buf).await
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // only the first iovec is filled: a short read is always allowed
        let (ptr, len) = unsafe {
            let iov = buf.write_iovec_ptr();
            if buf.write_iovec_len() == 0 {
                return (Ok(0), buf);
            }
            ((*iov).iov_base as *mut u8, (*iov).iov_len)
        };
        let mut tmp = vec![0u8; len];
        let (res, back) = self.read_into(tmp).await;
        tmp = back;
        match res {
            Ok(n) => {
                // SAFETY: the first iovec has `len >= n` writable bytes
                unsafe {
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), ptr, n);
                    buf.set_init(n);
                }
                (Ok(n), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }
}

impl AsyncWriteRent for TlsWrite {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `read_ptr` points at `bytes_init` initialised bytes owned by `buf`, which
        // lives (and is not touched) until it is handed back below
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.write_plain(data).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let mut total = 0;
        // SAFETY: the iovecs describe initialised memory owned by `buf` for this call
        let iovecs =
            unsafe { std::slice::from_raw_parts(buf.read_iovec_ptr(), buf.read_iovec_len()) };
        for iov in iovecs {
            let data =
                unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) };
            match self.write_plain(data).await {
                Ok(n) => total += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(total), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.tls.borrow_mut().send_close_notify();
        let sent = self.send().await;
        let closed = self.io.shutdown().await;
        sent.and(closed)
    }
}

impl AsyncReadRent for TlsStream {
    fn read<T: IoBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.rd.read(buf)
    }

    fn readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.rd.readv(buf)
    }
}

impl AsyncWriteRent for TlsStream {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.wr.write(buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.wr.writev(buf)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.wr.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.wr.shutdown()
    }
}

impl Transport for TlsStream {
    type Read = TlsRead;
    type Write = TlsWrite;

    fn into_halves(self) -> (TlsRead, TlsWrite) {
        (self.rd, self.wr)
    }

    fn from_halves(rd: TlsRead, wr: TlsWrite) -> Self {
        TlsStream { rd, wr }
    }
}
