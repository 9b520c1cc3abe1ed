//! An HTTP/1.1 answer read off a connection: status line and headers
//! (httparse), then the body as its headers frame it (a length, chunks, or
//! the connection's end), within limits, and whether the connection can carry
//! another request after it.

use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt};

/// An answer's status line and headers, and its body: the Management API
/// answers with empty bodies or small JSON documents.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_HEADERS: usize = 64;
/// Room made for each read: an answer to a post fits in one.
const READ_BYTES: usize = 2048;

/// How an answer's body ends.
enum Framing {
    None,
    Length(usize),
    Chunked,
    /// At the end of the connection.
    Close,
}

/// An answer: status line, headers, body. Whether the connection can carry
/// another request after it (HTTP/1.1 keep-alive, the body's end known,
/// nothing sent after it).
pub(super) async fn read_answer(
    stream: &mut (impl AsyncRead + Unpin),
    expects_body: bool,
) -> Result<(HttpResponse, bool), ConnectorError> {
    let mut buffer = Vec::new();
    loop {
        let mut header_slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut header_slots);
        let head_length = match parsed.parse(&buffer) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD_BYTES => {
                return Err(protocol(format!("an answer's head is over {MAX_HEAD_BYTES} bytes")))
            }
            Ok(httparse::Status::Partial) => {
                read_more(stream, &mut buffer, "before its answer").await?;
                continue;
            }
            Err(e) => return Err(protocol(format!("the answer does not parse: {e}"))),
        };
        let code = parsed.code.unwrap_or_default();
        if (100..200).contains(&code) {
            // An interim answer (100 Continue): the real one follows.
            buffer.drain(..head_length);
            continue;
        }
        let status = StatusCode::try_from(code).map_err(|e| protocol(e.to_string()))?;
        let mut keep_alive = parsed.version == Some(1);
        let (mut chunked, mut content_length) = (false, None);
        let mut answer = HttpResponse::new(status, Vec::new().into());
        for header in parsed.headers.iter() {
            let (name, value) = (header.name, header.value);
            if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if !value.eq_ignore_ascii_case(b"chunked") {
                    return Err(protocol("an answer's transfer-encoding is not chunked".into()));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                let length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_none() || content_length.is_some_and(|known| Some(known) != length) {
                    return Err(protocol("an answer's content-length is not one number".into()));
                }
                content_length = length;
            }
            // The SDK reads the error type and request id from the headers;
            // a value that is not text is of no use to it.
            if let Ok(value) = std::str::from_utf8(value) {
                answer
                    .headers_mut()
                    .try_append(name.to_string(), value.to_string())
                    .map_err(|e| protocol(e.to_string()))?;
            }
        }
        let framing = match (expects_body && code != 204 && code != 304, chunked, content_length) {
            (false, _, _) => Framing::None,
            (true, true, _) => Framing::Chunked,
            (true, false, Some(length)) if length > MAX_BODY_BYTES => return Err(too_large()),
            (true, false, Some(length)) => Framing::Length(length),
            (true, false, None) => Framing::Close,
        };
        buffer.drain(..head_length);
        let (body, ends_cleanly) = read_body(stream, buffer, framing).await?;
        *answer.body_mut() = body.into();
        return Ok((answer, keep_alive && ends_cleanly));
    }
}

/// The body, and whether the connection ended exactly with it.
async fn read_body(
    stream: &mut (impl AsyncRead + Unpin),
    mut buffer: Vec<u8>,
    framing: Framing,
) -> Result<(Vec<u8>, bool), ConnectorError> {
    match framing {
        Framing::None => Ok((Vec::new(), buffer.is_empty())),
        Framing::Length(length) => {
            while buffer.len() < length {
                read_more(stream, &mut buffer, "in an answer's body").await?;
            }
            let clean = buffer.len() == length;
            buffer.truncate(length);
            Ok((buffer, clean))
        }
        Framing::Close => loop {
            if buffer.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            buffer.reserve(READ_BYTES);
            if stream
                .read_buf(&mut buffer)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                == 0
            {
                return Ok((buffer, false));
            }
        },
        Framing::Chunked => {
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                let (size_length, size) = match httparse::parse_chunk_size(&buffer[at..]) {
                    Ok(httparse::Status::Complete(found)) => found,
                    Ok(httparse::Status::Partial) => {
                        read_more(stream, &mut buffer, "in an answer's chunk").await?;
                        continue;
                    }
                    Err(_) => return Err(protocol("an answer's chunk size does not parse".into())),
                };
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if size > MAX_BODY_BYTES - body.len() {
                    return Err(too_large());
                }
                if size == 0 {
                    // Trailers, if any, up to the empty line.
                    at += size_length;
                    loop {
                        if let Some(end) = find(&buffer[at..], b"\r\n") {
                            if end == 0 {
                                return Ok((body, buffer.len() == at + 2));
                            }
                            at += end + 2;
                        } else {
                            read_more(stream, &mut buffer, "in an answer's trailers").await?;
                        }
                    }
                }
                while buffer.len() < at + size_length + size + 2 {
                    read_more(stream, &mut buffer, "in an answer's chunk").await?;
                }
                let data = at + size_length;
                if &buffer[data + size..data + size + 2] != b"\r\n" {
                    return Err(protocol("an answer's chunk does not end with CRLF".into()));
                }
                body.extend_from_slice(&buffer[data..data + size]);
                at = data + size + 2;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Appends what the connection has next; its end here is an error.
async fn read_more(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
    while_: &str,
) -> Result<(), ConnectorError> {
    if buffer.len() > MAX_HEAD_BYTES + MAX_BODY_BYTES {
        return Err(too_large());
    }
    buffer.reserve(READ_BYTES);
    match stream.read_buf(buffer).await {
        Ok(0) => Err(ConnectorError::io(format!("the connection was closed {while_}").into())),
        Ok(_) => Ok(()),
        Err(e) => Err(ConnectorError::io(e.into())),
    }
}

fn protocol(message: String) -> ConnectorError {
    ConnectorError::other(message.into(), None)
}

fn too_large() -> ConnectorError {
    protocol(format!("an answer's body is over {MAX_BODY_BYTES} bytes"))
}
