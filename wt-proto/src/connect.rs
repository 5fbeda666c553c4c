//! The extended CONNECT request that opens a WebTransport session, and its response, on `http`
//! types (RFC 9220, draft-ietf-webtrans-http3 §3.2-3.3).
//!
//! This module owns what the HEADERS frames of a session's CONNECT stream mean: building,
//! encoding (through [`crate::qpack`]), decoding and validating them. It implements:
//!
//! - RFC 9220 §3 / RFC 8441 §4: the extended CONNECT request, with `:protocol`, `:scheme`,
//!   `:authority` and `:path` all required;
//! - RFC 9114 §4.3: pseudo-headers come before regular fields, are never repeated, and only the
//!   defined ones are allowed (`:method`, `:scheme`, `:authority`, `:path`, `:protocol` in a
//!   request; only `:status` in a response); `:authority` carries no userinfo (§4.3.1);
//! - RFC 9114 §4.2: no connection-specific fields (`connection`, `keep-alive`,
//!   `proxy-connection`, `transfer-encoding`, `upgrade`), and `te` only as `trailers`;
//! - the WebTransport draft: `:scheme` is `https` (§3.2), and subprotocol negotiation with
//!   `wt-available-protocols` (a structured-field List of Strings) and `wt-protocol` (a String
//!   Item) (RFC 9651, draft §3.3);
//! - the draft-02 response header [`DRAFT02_RESPONSE_HEADER`].
//!
//! Every validation failure is [`Error::Message`] (a malformed message, H3_MESSAGE_ERROR:
//! RFC 9114 §4.1.2); QPACK failures keep their own variants. Which `:protocol` value is right
//! (`webtransport` up to draft-14, `webtransport-h3` from draft-15) is the draft layer's
//! decision ([`crate::draft`]); here it only has to be a token.
//!
//! Builders are total and keep one invariant: every [`ConnectRequest`] and [`ConnectResponse`]
//! encodes to a field section that [`ConnectRequest::decode`] / [`ConnectResponse::decode`]
//! accept (given big enough limits). To keep it, [`ConnectRequest::with_header`] and
//! [`ConnectResponse::with_header`] drop, with a warning, the connection-specific fields HTTP/3
//! forbids, and [`ConnectRequest::with_origin`] drops an origin that is not a valid field value.
//! The one exception is a [`ConnectResponse`] whose status is 600 or above, which `http`
//! allows and HTTP (RFC 9110 §15) does not: it encodes, and decoding it fails.
//!
//! ```
//! use bytes::BytesMut;
//! use wt_proto::connect::{ConnectRequest, ConnectResponse};
//! use wt_proto::qpack::Limits;
//!
//! let uri: http::Uri = "https://example.com:4433/chat?room=1".parse().unwrap();
//! let request = ConnectRequest::new(&uri, "webtransport-h3")?
//!     .with_origin("https://example.com")
//!     .with_subprotocols(&["chat-v2", "chat-v1"])?;
//! let mut block = BytesMut::new();
//! request.encode(&mut block);
//! let received = ConnectRequest::decode(&block, &Limits::default())?;
//! assert_eq!(received, request);
//! assert_eq!(received.path(), "/chat?room=1");
//! assert_eq!(received.subprotocols()?, ["chat-v2", "chat-v1"]);
//!
//! let response = ConnectResponse::new(http::StatusCode::OK).with_subprotocol("chat-v2")?;
//! let mut block = BytesMut::new();
//! response.encode(&mut block);
//! let received = ConnectResponse::decode(&block, &Limits::default())?;
//! assert_eq!(received.status(), 200);
//! assert_eq!(received.subprotocol()?.as_deref(), Some("chat-v2"));
//! # Ok::<(), wt_proto::Error>(())
//! ```

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, ORIGIN};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use sfv::{BareItem, Item, ItemSerializer, List, ListEntry, ListSerializer, Parser, StringRef};

use crate::qpack::{self, Field, Limits};
use crate::Error;

/// The response header by which draft-02 servers (and the clients that check for it) confirm
/// the draft they speak; its value is [`DRAFT02_RESPONSE_VALUE`]. Later drafts negotiate with
/// SETTINGS instead and do not send it. Add it with
/// `response.with_header(HeaderName::from_static(DRAFT02_RESPONSE_HEADER),
/// HeaderValue::from_static(DRAFT02_RESPONSE_VALUE))`.
pub const DRAFT02_RESPONSE_HEADER: &str = "sec-webtransport-http3-draft";

/// The value of [`DRAFT02_RESPONSE_HEADER`]: `draft02`.
pub const DRAFT02_RESPONSE_VALUE: &str = "draft02";

/// The request field listing the client's subprotocols, most preferred first (a structured
/// field List of Strings, draft-ietf-webtrans-http3 §3.3).
pub const AVAILABLE_PROTOCOLS_HEADER: &str = "wt-available-protocols";

/// The response field naming the subprotocol the server chose (a structured field String).
pub const PROTOCOL_HEADER: &str = "wt-protocol";

/// The `:protocol` of an extended CONNECT, as [`ConnectRequest::to_http`] stores it in the
/// request's extensions (`http` has no type of its own for it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Protocol(String);

impl Protocol {
    /// Wraps a protocol name such as `webtransport`.
    pub fn new(protocol: impl Into<String>) -> Self {
        Protocol(protocol.into())
    }

    /// The protocol name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An extended CONNECT request for a WebTransport session (always `https`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    protocol: String,
    /// Always has scheme `https`, an authority and a path starting with `/`.
    uri: Uri,
    /// Regular (non-pseudo) fields only.
    headers: HeaderMap,
}

impl ConnectRequest {
    /// A request for `uri`, which must be `https` with an authority (no userinfo); a missing
    /// path becomes `/`. `protocol` (`:protocol`) must be a token.
    pub fn new(uri: &Uri, protocol: &str) -> Result<Self, Error> {
        if uri.scheme() != Some(&Scheme::HTTPS) {
            return Err(Error::Message("WebTransport URI scheme is not https"));
        }
        let authority = uri
            .authority()
            .ok_or(Error::Message("WebTransport URI has no authority"))?;
        let path = match uri.path_and_query().map(PathAndQuery::as_str) {
            None | Some("") => "/".to_owned(),
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("/{p}"),
        };
        Self::build(protocol, authority.as_str(), &path, HeaderMap::new())
    }

    /// Sets the `origin` field (replacing any). Browsers always send one (draft §3.2). An
    /// origin that is not a valid field value is ignored with a warning.
    pub fn with_origin(mut self, origin: &str) -> Self {
        match HeaderValue::from_str(origin) {
            Ok(value) => {
                if self.headers.try_insert(ORIGIN, value).is_err() {
                    tracing::warn!("too many header fields: origin not set");
                }
            }
            Err(_) => tracing::warn!("origin is not a valid field value: not set"),
        }
        self
    }

    /// Appends a regular field. Connection-specific fields, which HTTP/3 forbids (RFC 9114
    /// §4.2), are ignored with a warning.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        append_checked(&mut self.headers, name, value);
        self
    }

    /// Sets `wt-available-protocols` to `protocols` (most preferred first) as an RFC 9651 List
    /// of Strings, replacing any; an empty slice removes the field. Each protocol must be a
    /// valid sf-string: printable ASCII only.
    pub fn with_subprotocols(mut self, protocols: &[&str]) -> Result<Self, Error> {
        let name = HeaderName::from_static(AVAILABLE_PROTOCOLS_HEADER);
        let mut list = ListSerializer::new();
        for protocol in protocols {
            let _ = list.bare_item(sf_string(protocol)?);
        }
        match list.finish() {
            None => {
                self.headers.remove(&name);
            }
            Some(text) => {
                let value = HeaderValue::try_from(text)
                    .map_err(|_| Error::Message("wt-available-protocols is not a field value"))?;
                self.headers
                    .try_insert(name, value)
                    .map_err(|_| Error::Message("too many header fields"))?;
            }
        }
        Ok(self)
    }

    /// The `:protocol`, e.g. `webtransport`.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// The `:scheme`: always `https`.
    pub fn scheme(&self) -> &str {
        self.uri.scheme_str().unwrap_or("https")
    }

    /// The `:authority`, e.g. `example.com:4433`.
    pub fn authority(&self) -> &str {
        self.uri.authority().map_or("", Authority::as_str)
    }

    /// The `:path`, with the query if any, e.g. `/chat?room=1`.
    pub fn path(&self) -> &str {
        self.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    }

    /// The target URI, `https://{authority}{path}`.
    pub fn uri(&self) -> Uri {
        self.uri.clone()
    }

    /// The `origin` field, if present and visible ASCII.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get(ORIGIN).and_then(|v| v.to_str().ok())
    }

    /// The regular (non-pseudo) fields, including `origin` and `wt-available-protocols`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The subprotocols of `wt-available-protocols`, most preferred first; empty when the field
    /// is absent. Parameters are ignored (draft §3.3).
    ///
    /// A malformed field, or a member that is not a String, is [`Error::Message`]. The draft
    /// says such a field is to be ignored rather than fail the request: callers that follow it
    /// treat an error like an absent field.
    pub fn subprotocols(&self) -> Result<Vec<String>, Error> {
        let Some(text) = joined(&self.headers, AVAILABLE_PROTOCOLS_HEADER)? else {
            return Ok(Vec::new());
        };
        let list: List = Parser::new(&text)
            .parse()
            .map_err(|_| Error::Message("wt-available-protocols is not a structured-field List"))?;
        list.into_iter()
            .map(|entry| match entry {
                ListEntry::Item(Item {
                    bare_item: BareItem::String(s),
                    ..
                }) => Ok(s.as_str().to_owned()),
                _ => Err(Error::Message(
                    "wt-available-protocols member is not a String",
                )),
            })
            .collect()
    }

    /// The field lines: the pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`,
    /// `:protocol`), then the regular fields.
    pub fn to_fields(&self) -> Vec<Field> {
        let mut fields = Vec::with_capacity(5 + self.headers.len());
        fields.push(Field::new(":method", "CONNECT"));
        fields.push(Field::new(":scheme", "https"));
        fields.push(Field::new(":authority", copy(self.authority())));
        fields.push(Field::new(":path", copy(self.path())));
        fields.push(Field::new(":protocol", copy(&self.protocol)));
        fields.extend(header_fields(&self.headers));
        fields
    }

    /// Validates decoded field lines as an extended CONNECT request (see the module comment).
    pub fn from_fields(fields: Vec<Field>) -> Result<Self, Error> {
        let mut pseudo = RequestPseudo::default();
        let mut headers = HeaderMap::new();
        for field in fields {
            if is_pseudo(&field) {
                if !headers.is_empty() {
                    return Err(PSEUDO_AFTER_REGULAR);
                }
                pseudo.set(field)?;
            } else {
                append_field(&mut headers, field)?;
            }
        }
        pseudo.into_request(headers)
    }

    /// Appends the QPACK field section (the HEADERS frame payload, without frame header).
    pub fn encode(&self, out: &mut BytesMut) {
        qpack::encode(&self.to_fields(), out);
    }

    /// Decodes and validates a whole field section (a HEADERS frame payload).
    pub fn decode(block: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::from_fields(qpack::decode(block, limits)?)
    }

    /// The request as `http` sees it: method CONNECT, version HTTP/3, the URI and the regular
    /// fields; the `:protocol` is in the extensions as a [`Protocol`].
    pub fn to_http(&self) -> http::Request<()> {
        let mut request = http::Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.version_mut() = Version::HTTP_3;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
            .extensions_mut()
            .insert(Protocol::new(self.protocol.clone()));
        request
    }

    /// Validates the parts shared by [`Self::new`] and [`Self::from_fields`] and builds the URI.
    fn build(
        protocol: &str,
        authority: &str,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Self, Error> {
        if protocol.is_empty() || !protocol.bytes().all(qpack::is_tchar) {
            return Err(Error::Message(":protocol is not a token"));
        }
        let uri = Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(parse_authority(authority)?)
            .path_and_query(parse_path(path)?)
            .build()
            .map_err(|_| Error::Message("invalid request URI"))?;
        Ok(ConnectRequest {
            protocol: protocol.to_owned(),
            uri,
            headers,
        })
    }
}

/// A response to an extended CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    status: StatusCode,
    /// Regular (non-pseudo) fields only.
    headers: HeaderMap,
}

impl ConnectResponse {
    /// A response with `status` (2xx accepts the session) and no other field.
    pub fn new(status: StatusCode) -> Self {
        ConnectResponse {
            status,
            headers: HeaderMap::new(),
        }
    }

    /// Appends a regular field. Connection-specific fields, which HTTP/3 forbids (RFC 9114
    /// §4.2), are ignored with a warning.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        append_checked(&mut self.headers, name, value);
        self
    }

    /// Sets `wt-protocol` to `protocol` as an RFC 9651 String (printable ASCII only),
    /// replacing any.
    pub fn with_subprotocol(mut self, protocol: &str) -> Result<Self, Error> {
        let text = ItemSerializer::new()
            .bare_item(sf_string(protocol)?)
            .finish();
        let value = HeaderValue::try_from(text)
            .map_err(|_| Error::Message("wt-protocol is not a field value"))?;
        self.headers
            .try_insert(HeaderName::from_static(PROTOCOL_HEADER), value)
            .map_err(|_| Error::Message("too many header fields"))?;
        Ok(self)
    }

    /// The `:status`.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The regular (non-pseudo) fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The subprotocol of `wt-protocol`, or `None` when the field is absent. Parameters are
    /// ignored. A malformed field or one that is not a String is [`Error::Message`]; the draft
    /// (§3.3) says to ignore such a field, and to ignore one naming a protocol the client did
    /// not offer, which the caller checks.
    pub fn subprotocol(&self) -> Result<Option<String>, Error> {
        let Some(text) = joined(&self.headers, PROTOCOL_HEADER)? else {
            return Ok(None);
        };
        let item: Item = Parser::new(&text)
            .parse()
            .map_err(|_| Error::Message("wt-protocol is not a structured-field Item"))?;
        match item.bare_item {
            BareItem::String(s) => Ok(Some(s.as_str().to_owned())),
            _ => Err(Error::Message("wt-protocol is not a String")),
        }
    }

    /// The field lines: `:status`, then the regular fields.
    pub fn to_fields(&self) -> Vec<Field> {
        let mut fields = Vec::with_capacity(1 + self.headers.len());
        fields.push(Field::new(":status", copy(self.status.as_str())));
        fields.extend(header_fields(&self.headers));
        fields
    }

    /// Validates decoded field lines as a response: exactly one `:status` of three digits in
    /// 100..=599, no other pseudo-header, no connection-specific field.
    pub fn from_fields(fields: Vec<Field>) -> Result<Self, Error> {
        let mut status = None;
        let mut headers = HeaderMap::new();
        for field in fields {
            if !is_pseudo(&field) {
                append_field(&mut headers, field)?;
            } else if !headers.is_empty() {
                return Err(PSEUDO_AFTER_REGULAR);
            } else if field.name != ":status" {
                return Err(Error::Message(
                    "pseudo-header field other than :status in response",
                ));
            } else if status.replace(field.value).is_some() {
                return Err(Error::Message("repeated :status"));
            }
        }
        let status = status.ok_or(Error::Message(":status is missing"))?;
        Ok(ConnectResponse {
            status: parse_status(&status)?,
            headers,
        })
    }

    /// Appends the QPACK field section (the HEADERS frame payload, without frame header).
    pub fn encode(&self, out: &mut BytesMut) {
        qpack::encode(&self.to_fields(), out);
    }

    /// Decodes and validates a whole field section (a HEADERS frame payload).
    pub fn decode(block: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::from_fields(qpack::decode(block, limits)?)
    }

    /// The response as `http` sees it: the status, version HTTP/3 and the regular fields.
    pub fn to_http(&self) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = self.status;
        *response.version_mut() = Version::HTTP_3;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

const PSEUDO_AFTER_REGULAR: Error = Error::Message("pseudo-header field after a regular field");

/// The request pseudo-headers seen so far, each at most once.
#[derive(Default)]
struct RequestPseudo {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: Option<Bytes>,
}

impl RequestPseudo {
    fn set(&mut self, field: Field) -> Result<(), Error> {
        let slot = match &field.name[..] {
            b":method" => &mut self.method,
            b":scheme" => &mut self.scheme,
            b":authority" => &mut self.authority,
            b":path" => &mut self.path,
            b":protocol" => &mut self.protocol,
            _ => return Err(Error::Message("unknown pseudo-header field in request")),
        };
        if slot.replace(field.value).is_some() {
            return Err(Error::Message("repeated pseudo-header field"));
        }
        Ok(())
    }

    fn into_request(self, headers: HeaderMap) -> Result<ConnectRequest, Error> {
        let method = self.method.ok_or(Error::Message(":method is missing"))?;
        if method != "CONNECT" {
            return Err(Error::Message(":method is not CONNECT"));
        }
        let protocol = self.protocol.ok_or(Error::Message(
            ":protocol is missing: not an extended CONNECT",
        ))?;
        let scheme = self.scheme.ok_or(Error::Message(":scheme is missing"))?;
        let authority = self
            .authority
            .ok_or(Error::Message(":authority is missing"))?;
        let path = self.path.ok_or(Error::Message(":path is missing"))?;
        if scheme != "https" {
            return Err(Error::Message(":scheme is not https"));
        }
        ConnectRequest::build(
            utf8(&protocol, ":protocol is not a token")?,
            utf8(&authority, ":authority is not valid")?,
            utf8(&path, ":path is not valid")?,
            headers,
        )
    }
}

fn utf8<'a>(bytes: &'a [u8], error: &'static str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::Message(error))
}

/// An `:authority` for `https`: non-empty, no userinfo (RFC 9114 §4.3.1), a valid authority.
fn parse_authority(authority: &str) -> Result<Authority, Error> {
    if authority.is_empty() {
        return Err(Error::Message(":authority is empty"));
    }
    if authority.contains('@') {
        return Err(Error::Message(":authority contains userinfo"));
    }
    Authority::try_from(authority).map_err(|_| Error::Message(":authority is not valid"))
}

/// A `:path` for `https`: non-empty, absolute, and kept exactly (no fragment, nothing `http`
/// would rewrite).
fn parse_path(path: &str) -> Result<PathAndQuery, Error> {
    if path.is_empty() {
        return Err(Error::Message(":path is empty"));
    }
    if !path.starts_with('/') {
        return Err(Error::Message(":path does not start with '/'"));
    }
    match PathAndQuery::try_from(path) {
        Ok(parsed) if parsed.as_str() == path => Ok(parsed),
        _ => Err(Error::Message(":path is not valid")),
    }
}

/// A `:status`: exactly three digits, 100 to 599 (RFC 9114 §4.3.2, RFC 9110 §15).
fn parse_status(status: &[u8]) -> Result<StatusCode, Error> {
    let digits = <[u8; 3]>::try_from(status)
        .ok()
        .filter(|d| d.iter().all(u8::is_ascii_digit))
        .ok_or(Error::Message(":status is not three digits"))?;
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&code) {
        return Err(Error::Message(":status is not in 100..=599"));
    }
    StatusCode::from_u16(code).map_err(|_| Error::Message(":status is not valid"))
}

fn is_pseudo(field: &Field) -> bool {
    field.name.first() == Some(&b':')
}

/// Validates one decoded regular field and appends it.
fn append_field(headers: &mut HeaderMap, field: Field) -> Result<(), Error> {
    // `HeaderName::from_bytes` would silently lowercase; HTTP/3 forbids uppercase names.
    if field.name.iter().any(u8::is_ascii_uppercase) {
        return Err(Error::Message("uppercase character in field name"));
    }
    let name = HeaderName::from_bytes(&field.name)
        .map_err(|_| Error::Message("invalid header field name"))?;
    let value = HeaderValue::from_maybe_shared(field.value)
        .map_err(|_| Error::Message("invalid header field value"))?;
    check_not_connection_specific(&name, &value)?;
    headers
        .try_append(name, value)
        .map_err(|_| Error::Message("too many header fields"))?;
    Ok(())
}

/// Appends a field a local caller supplied, dropping it (with a warning) if HTTP/3 forbids it.
fn append_checked(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    if let Err(error) = check_not_connection_specific(&name, &value) {
        tracing::warn!(%name, %error, "header field not added");
    } else if headers.try_append(name, value).is_err() {
        tracing::warn!("too many header fields: header field not added");
    }
}

/// RFC 9114 §4.2: connection-specific fields are malformed in HTTP/3; `te` may only say
/// `trailers`.
fn check_not_connection_specific(name: &HeaderName, value: &HeaderValue) -> Result<(), Error> {
    match name.as_str() {
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {
            Err(Error::Message("connection-specific header field"))
        }
        "te" if !value.as_bytes().eq_ignore_ascii_case(b"trailers") => {
            Err(Error::Message("te header field other than \"trailers\""))
        }
        _ => Ok(()),
    }
}

fn header_fields(headers: &HeaderMap) -> impl Iterator<Item = Field> + '_ {
    headers.iter().map(|(name, value)| {
        Field::new(
            copy(name.as_str()),
            Bytes::copy_from_slice(value.as_bytes()),
        )
    })
}

fn copy(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sf_string(s: &str) -> Result<&StringRef, Error> {
    StringRef::from_str(s).map_err(|_| Error::Message("protocol is not a structured-field String"))
}

/// All lines of field `name` joined with ", " (RFC 9110 §5.3, as RFC 9651 §4.2 parses them), or
/// `None` when there is none.
fn joined(headers: &HeaderMap, name: &str) -> Result<Option<String>, Error> {
    let mut text: Option<String> = None;
    for value in headers.get_all(name) {
        let value = value
            .to_str()
            .map_err(|_| Error::Message("structured field is not ASCII"))?;
        match &mut text {
            Some(text) => {
                text.push_str(", ");
                text.push_str(value);
            }
            None => text = Some(value.to_owned()),
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn big() -> Limits {
        Limits {
            max_fields: 10_000,
            max_bytes: usize::MAX,
        }
    }

    fn request() -> ConnectRequest {
        let uri: Uri = "https://example.com:4433/wt".parse().unwrap();
        ConnectRequest::new(&uri, "webtransport")
            .unwrap()
            .with_origin("http://127.0.0.1:8000")
    }

    fn block(fields: &[Field]) -> BytesMut {
        let mut out = BytesMut::new();
        qpack::encode(fields, &mut out);
        out
    }

    /// The request fields, in Chromium's shape, with `edit` applied.
    fn request_fields(edit: impl FnOnce(&mut Vec<Field>)) -> Vec<Field> {
        let mut fields = vec![
            Field::new(":method", "CONNECT"),
            Field::new(":scheme", "https"),
            Field::new(":authority", "example.com:4433"),
            Field::new(":path", "/wt"),
            Field::new(":protocol", "webtransport"),
            Field::new("origin", "http://127.0.0.1:8000"),
        ];
        edit(&mut fields);
        fields
    }

    #[test]
    fn request_accessors_and_round_trip() {
        let request = request();
        assert_eq!(request.protocol(), "webtransport");
        assert_eq!(request.scheme(), "https");
        assert_eq!(request.authority(), "example.com:4433");
        assert_eq!(request.path(), "/wt");
        assert_eq!(request.uri(), "https://example.com:4433/wt");
        assert_eq!(request.origin(), Some("http://127.0.0.1:8000"));
        assert_eq!(request.headers().len(), 1);
        assert_eq!(request.to_fields(), request_fields(|_| {}));
        let mut out = BytesMut::new();
        request.encode(&mut out);
        assert_eq!(
            ConnectRequest::decode(&out, &Limits::default()),
            Ok(request)
        );
    }

    /// A request as Chromium encodes it: static `:method CONNECT` (15), `:scheme https` (23),
    /// `:path /` (1), `:authority` by static name (0), `:protocol` as a literal name.
    #[test]
    fn decodes_a_chromium_like_request() {
        let mut b = vec![0x00, 0x00, 0xc0 | 15, 0xc0 | 23, 0x50, 11];
        b.extend_from_slice(b"example.com");
        b.push(0xc0 | 1);
        b.extend_from_slice(&[0x27, 0x02]);
        b.extend_from_slice(b":protocol");
        b.push(12);
        b.extend_from_slice(b"webtransport");
        b.extend_from_slice(&[0x5f, 75, 21]); // origin, static name 90
        b.extend_from_slice(b"http://127.0.0.1:8000");
        let request = ConnectRequest::decode(&b, &Limits::default()).unwrap();
        assert_eq!(request.uri(), "https://example.com/");
        assert_eq!(request.protocol(), "webtransport");
        assert_eq!(request.origin(), Some("http://127.0.0.1:8000"));
    }

    #[test]
    fn new_validates_the_uri() {
        let new = |uri: &str| ConnectRequest::new(&uri.parse().unwrap(), "webtransport");
        assert_eq!(new("https://a.example").unwrap().path(), "/");
        assert_eq!(new("https://a.example?x=1").unwrap().path(), "/?x=1");
        assert_eq!(
            new("https://a.example/p?q").unwrap().uri(),
            "https://a.example/p?q"
        );
        let cases = [
            ("http://a.example/", "WebTransport URI scheme is not https"),
            ("/only-a-path", "WebTransport URI scheme is not https"),
            ("https://user@a.example/", ":authority contains userinfo"),
        ];
        for (uri, why) in cases {
            assert_eq!(new(uri), Err(Error::Message(why)), "{uri}");
        }
        let uri: Uri = "https://a.example/".parse().unwrap();
        for protocol in ["", "web transport", "wt/1", "é"] {
            assert_eq!(
                ConnectRequest::new(&uri, protocol),
                Err(Error::Message(":protocol is not a token"))
            );
        }
    }

    #[test]
    fn request_validation_rejects() {
        type Edit = fn(&mut Vec<Field>);
        let cases: [(Edit, &str); 28] = [
            (
                |f| f.swap(4, 5),
                "pseudo-header field after a regular field",
            ),
            (
                |f| f.push(Field::new(":path", "/x")),
                "pseudo-header field after a regular field",
            ),
            (
                |f| f.insert(1, Field::new(":method", "CONNECT")),
                "repeated pseudo-header field",
            ),
            (
                |f| f.insert(1, Field::new(":scheme", "https")),
                "repeated pseudo-header field",
            ),
            (
                |f| f.insert(1, Field::new(":authority", "a")),
                "repeated pseudo-header field",
            ),
            (
                |f| f.insert(1, Field::new(":path", "/")),
                "repeated pseudo-header field",
            ),
            (
                |f| f.insert(1, Field::new(":protocol", "x")),
                "repeated pseudo-header field",
            ),
            (
                |f| f.insert(1, Field::new(":status", "200")),
                "unknown pseudo-header field in request",
            ),
            (
                |f| f.insert(1, Field::new(":foo", "1")),
                "unknown pseudo-header field in request",
            ),
            (|f| drop(f.remove(0)), ":method is missing"),
            (|f| f[0].value = "GET".into(), ":method is not CONNECT"),
            (|f| f[0].value = "connect".into(), ":method is not CONNECT"),
            (
                |f| drop(f.remove(4)),
                ":protocol is missing: not an extended CONNECT",
            ),
            (|f| drop(f.remove(1)), ":scheme is missing"),
            (|f| f[1].value = "http".into(), ":scheme is not https"),
            (|f| drop(f.remove(2)), ":authority is missing"),
            (|f| f[2].value = "".into(), ":authority is empty"),
            (
                |f| f[2].value = "u:p@a.example".into(),
                ":authority contains userinfo",
            ),
            (|f| f[2].value = "a b".into(), ":authority is not valid"),
            (|f| drop(f.remove(3)), ":path is missing"),
            (|f| f[3].value = "".into(), ":path is empty"),
            (
                |f| f[3].value = "wt".into(),
                ":path does not start with '/'",
            ),
            (|f| f[3].value = "/wt#frag".into(), ":path is not valid"),
            (|f| f[3].value = "/w t".into(), ":path is not valid"),
            (|f| f[4].value = "".into(), ":protocol is not a token"),
            (|f| f[4].value = "a b".into(), ":protocol is not a token"),
            (
                |f| f[5].value = "a\x01b".into(),
                "invalid header field value",
            ),
            (
                |f| f[5].name = "Origin".into(),
                "uppercase character in field name",
            ),
        ];
        for (edit, why) in cases {
            let fields = request_fields(edit);
            assert_eq!(
                ConnectRequest::from_fields(fields.clone()),
                Err(Error::Message(why)),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn connection_specific_fields_are_rejected() {
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ] {
            let fields = request_fields(|f| f.push(Field::new(name, "x")));
            assert_eq!(
                ConnectRequest::decode(&block(&fields), &big()),
                Err(Error::Message("connection-specific header field"))
            );
            let response = vec![Field::new(":status", "200"), Field::new(name, "x")];
            assert_eq!(
                ConnectResponse::from_fields(response),
                Err(Error::Message("connection-specific header field"))
            );
        }
        let te = |value: &'static str| request_fields(|f| f.push(Field::new("te", value)));
        assert!(ConnectRequest::from_fields(te("trailers")).is_ok());
        assert_eq!(
            ConnectRequest::from_fields(te("gzip")),
            Err(Error::Message("te header field other than \"trailers\""))
        );
    }

    #[test]
    fn builders_drop_what_http3_forbids() {
        let request = request()
            .with_header(
                HeaderName::from_static("connection"),
                HeaderValue::from_static("close"),
            )
            .with_header(http::header::TE, HeaderValue::from_static("gzip"))
            .with_header(http::header::TE, HeaderValue::from_static("trailers"))
            .with_origin("bad\norigin");
        assert_eq!(request.headers().len(), 2);
        assert_eq!(request.origin(), Some("http://127.0.0.1:8000"));
        let response = ConnectResponse::new(StatusCode::OK)
            .with_header(http::header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(response.headers().is_empty());
    }

    #[test]
    fn subprotocols() {
        let request = request();
        assert_eq!(request.subprotocols(), Ok(vec![]));
        let request = request
            .with_subprotocols(&["chat-v2", "a \"quoted\" one"])
            .unwrap();
        assert_eq!(
            request.headers()[AVAILABLE_PROTOCOLS_HEADER],
            r#""chat-v2", "a \"quoted\" one""#
        );
        assert_eq!(
            request.subprotocols().unwrap(),
            ["chat-v2", "a \"quoted\" one"]
        );
        assert_eq!(
            request.clone().with_subprotocols(&["é"]),
            Err(Error::Message("protocol is not a structured-field String"))
        );
        let cleared = request.with_subprotocols(&[]).unwrap();
        assert!(cleared.headers().get(AVAILABLE_PROTOCOLS_HEADER).is_none());
    }

    #[test]
    fn available_protocols_parsing() {
        let with = |values: &[&'static str]| {
            values.iter().fold(request(), |r, v| {
                r.with_header(
                    HeaderName::from_static(AVAILABLE_PROTOCOLS_HEADER),
                    HeaderValue::from_static(v),
                )
            })
        };
        // Parameters are ignored; several lines join into one List.
        assert_eq!(
            with(&[r#""a";q=1, "b""#, r#""c""#]).subprotocols().unwrap(),
            ["a", "b", "c"]
        );
        for bad in [r#"a, "b""#, r#"("a" "b")"#, r#""a"#, "?1", r#""a",,"b""#] {
            assert!(
                matches!(with(&[bad]).subprotocols(), Err(Error::Message(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn request_to_http() {
        let http = request().to_http();
        assert_eq!(http.method(), Method::CONNECT);
        assert_eq!(http.version(), Version::HTTP_3);
        assert_eq!(http.uri(), "https://example.com:4433/wt");
        assert_eq!(http.headers()[ORIGIN], "http://127.0.0.1:8000");
        assert_eq!(
            http.extensions().get::<Protocol>().map(Protocol::as_str),
            Some("webtransport")
        );
    }

    #[test]
    fn response_round_trip_and_protocol() {
        let response = ConnectResponse::new(StatusCode::OK)
            .with_header(
                HeaderName::from_static(DRAFT02_RESPONSE_HEADER),
                HeaderValue::from_static(DRAFT02_RESPONSE_VALUE),
            )
            .with_subprotocol("chat-v2")
            .unwrap();
        assert_eq!(response.headers()[PROTOCOL_HEADER], r#""chat-v2""#);
        assert_eq!(response.subprotocol(), Ok(Some("chat-v2".to_owned())));
        let mut out = BytesMut::new();
        response.encode(&mut out);
        // `:status 200` is static entry 25.
        assert_eq!(&out[..3], &[0x00, 0x00, 0xc0 | 25]);
        let decoded = ConnectResponse::decode(&out, &Limits::default()).unwrap();
        assert_eq!(decoded, response);
        assert_eq!(decoded.headers()[DRAFT02_RESPONSE_HEADER], "draft02");
        let http = decoded.to_http();
        assert_eq!(http.status(), StatusCode::OK);
        assert_eq!(http.headers().len(), 2);
        assert_eq!(
            ConnectResponse::new(StatusCode::NOT_FOUND).subprotocol(),
            Ok(None)
        );
        assert!(ConnectResponse::new(StatusCode::OK)
            .with_subprotocol("\u{7f}")
            .is_err());
    }

    #[test]
    fn response_protocol_parsing() {
        let with = |v: &'static str| {
            ConnectResponse::new(StatusCode::OK).with_header(
                HeaderName::from_static(PROTOCOL_HEADER),
                HeaderValue::from_static(v),
            )
        };
        assert_eq!(with(r#""x";a=1"#).subprotocol(), Ok(Some("x".to_owned())));
        for bad in ["x", r#""x", "y""#, "(\"x\")", r#""x"#, "1"] {
            assert!(
                matches!(with(bad).subprotocol(), Err(Error::Message(_))),
                "{bad}"
            );
        }
        // Two lines make a List, not an Item.
        assert!(with(r#""x""#)
            .with_header(
                HeaderName::from_static(PROTOCOL_HEADER),
                HeaderValue::from_static(r#""y""#)
            )
            .subprotocol()
            .is_err());
    }

    #[test]
    fn response_validation_rejects() {
        let status = |s: &'static str| vec![Field::new(":status", s), Field::new("server", "x")];
        let cases: [(Vec<Field>, &str); 11] = [
            (vec![Field::new("server", "x")], ":status is missing"),
            (vec![], ":status is missing"),
            (
                vec![Field::new(":status", "200"), Field::new(":status", "200")],
                "repeated :status",
            ),
            (
                vec![Field::new("server", "x"), Field::new(":status", "200")],
                "pseudo-header field after a regular field",
            ),
            (
                vec![Field::new(":status", "200"), Field::new(":path", "/")],
                "pseudo-header field other than :status in response",
            ),
            (status("20"), ":status is not three digits"),
            (status("2000"), ":status is not three digits"),
            (status("2x0"), ":status is not three digits"),
            (status("+20"), ":status is not three digits"),
            (status("099"), ":status is not in 100..=599"),
            (status("600"), ":status is not in 100..=599"),
        ];
        for (fields, why) in cases {
            assert_eq!(
                ConnectResponse::from_fields(fields.clone()),
                Err(Error::Message(why)),
                "{fields:?}"
            );
        }
        for ok in ["100", "101", "200", "404", "599"] {
            assert_eq!(
                ConnectResponse::from_fields(status(ok))
                    .unwrap()
                    .status()
                    .as_str(),
                ok
            );
        }
    }

    #[test]
    fn decode_propagates_qpack_errors_and_limits() {
        assert!(matches!(
            ConnectRequest::decode(&[0x00], &big()),
            Err(Error::Qpack(_))
        ));
        assert!(matches!(
            ConnectResponse::decode(&[0x01, 0x00], &big()),
            Err(Error::Qpack(_))
        ));
        let mut out = BytesMut::new();
        request().encode(&mut out);
        let tiny = Limits {
            max_fields: 3,
            max_bytes: 16384,
        };
        assert!(matches!(
            ConnectRequest::decode(&out, &tiny),
            Err(Error::TooLarge { .. })
        ));
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-z0-9!#$%&'*+.^_`|~-]{1,16}"
    }

    fn requests() -> impl Strategy<Value = ConnectRequest> {
        let authority = (
            "[a-z0-9-]{1,12}(\\.[a-z]{1,6}){0,2}",
            prop::option::of(0u16..),
        )
            .prop_map(|(host, port)| match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            });
        let path = "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,10}){1,3}(\\?[a-z0-9=&]{0,12})?";
        let protocols = prop::collection::vec("[ -~]{0,12}", 0..4);
        let extra = prop::collection::vec((token(), "[!-~]([ -~]{0,30}[!-~])?"), 0..4);
        (
            token(),
            authority,
            path,
            prop::option::of("[ -~]{1,30}"),
            protocols,
            extra,
        )
            .prop_map(|(protocol, authority, path, origin, protocols, extra)| {
                let uri: Uri = format!("https://{authority}{path}").parse().unwrap();
                let mut request = ConnectRequest::new(&uri, &protocol).unwrap();
                if let Some(origin) = origin {
                    request = request.with_origin(&origin);
                }
                let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
                request = request.with_subprotocols(&protocols).unwrap();
                for (name, value) in extra {
                    request = request.with_header(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(&value).unwrap(),
                    );
                }
                request
            })
    }

    proptest! {
        #[test]
        fn requests_round_trip(request in requests()) {
            let mut out = BytesMut::new();
            request.encode(&mut out);
            let decoded = ConnectRequest::decode(&out, &big())?;
            prop_assert_eq!(decoded.subprotocols(), request.subprotocols());
            prop_assert_eq!(&decoded, &request);
            // A truncated section fails, unless the cut falls between two field lines after
            // the pseudo-headers: then it is a valid request with fewer regular fields.
            let fields = request.to_fields();
            for cut in 0..out.len() {
                if let Ok(shorter) = ConnectRequest::decode(&out[..cut], &big()) {
                    let got = shorter.to_fields();
                    prop_assert!(got.len() < fields.len() && fields.starts_with(&got));
                }
            }
        }

        #[test]
        fn responses_round_trip(
            status in 100u16..600,
            protocol in prop::option::of("[ -~]{0,20}"),
            extra in prop::collection::vec((token(), "[!-~]{0,20}"), 0..4),
        ) {
            let mut response = ConnectResponse::new(StatusCode::from_u16(status).unwrap());
            if let Some(protocol) = &protocol {
                response = response.with_subprotocol(protocol)?;
            }
            for (name, value) in extra {
                response = response.with_header(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            let mut out = BytesMut::new();
            response.encode(&mut out);
            let decoded = ConnectResponse::decode(&out, &big())?;
            prop_assert_eq!(&decoded, &response);
            prop_assert_eq!(decoded.subprotocol()?, protocol);
            let fields = response.to_fields();
            for cut in 0..out.len() {
                if let Ok(shorter) = ConnectResponse::decode(&out[..cut], &big()) {
                    let got = shorter.to_fields();
                    prop_assert!(got.len() < fields.len() && fields.starts_with(&got));
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(block in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(request) = ConnectRequest::decode(&block, &Limits::default()) {
                let mut out = BytesMut::new();
                request.encode(&mut out);
                prop_assert_eq!(ConnectRequest::decode(&out, &Limits::default())?, request);
            }
            if let Ok(response) = ConnectResponse::decode(&block, &Limits::default()) {
                let mut out = BytesMut::new();
                response.encode(&mut out);
                prop_assert_eq!(ConnectResponse::decode(&out, &Limits::default())?, response);
            }
        }
    }
}
